"""Musicnn and its VGG baseline in PyTorch, with a strict converter from the original TF weights.

A faithful port of ``musicnn/models.py`` (musicnn 0.1.0, Pons & Serra 2019) for inference.  The
original builds NHWC graphs with ``tf.compat.v1.layers``; these modules compute in PyTorch's
channels-first layout and hand intermediate features back in the original's layout.

Input to both networks: log-mel patches ``(batch, frames, 96)`` float32, ``frames = 187`` (3 s at
16 kHz, hop 256); output: logits ``(batch, 50)`` (the taggram is their sigmoid).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_MELS = 96
PATCH_FRAMES = 187
NUM_CLASSES = 50

# tf.compat.v1.layers.batch_normalization defaults (TF's momentum 0.99 is PyTorch's 0.01).
BN_EPS = 1e-3
BN_MOMENTUM = 0.01

# musicnn/configuration.py, copied as data (importing it is harmless, but finding it needs the
# package installed, and the tagger must work from a downloaded wheel too).
MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock",
    "60s", "rnb", "indie pop", "sad", "House", "happy",
]  # fmt: skip

MUSICNN_FEATURES = (
    "timbral",
    "temporal",
    "cnn1",
    "cnn2",
    "cnn3",
    "mean_pool",
    "max_pool",
    "penultimate",
)
VGG_FEATURES = ("pool1", "pool2", "pool3", "pool4", "pool5")


class WeightsError(ValueError):
    """The TensorFlow variables do not match the architecture (missing, extra, mis-shaped)."""


def _batch_norm_2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _batch_norm_1d(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _same_padding(kernel: int) -> tuple[int, int]:
    # TF's 'same' (stride 1) puts the odd pixel of an even kernel's padding after, not before.
    total = kernel - 1
    return total // 2, total - total // 2


class FrontendBlock(nn.Module):
    """Conv over (time, freq) -> ReLU -> BN -> max over all frequencies: ``(B, C, time)``.

    ``timbral_block``: the input is zero-padded by 3 frames each side, the conv is 'valid'.
    ``tempo_block``: a ``(k, 1)`` conv with TF 'same' padding (only time needs any).
    """

    def __init__(self, filters: int, kernel: tuple[int, int], time_padding: tuple[int, int]):
        super().__init__()
        self.time_padding = time_padding
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = _batch_norm_2d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # max_f BN(ReLU(z)) = BN(ReLU(max_f z)) where the BN scale (weight / sqrt(var + eps)) is
        # >= 0, and BN(ReLU(min_f z)) where it is < 0: ReLU and a per-channel affine map are
        # monotone, in float rounding too. So pool first and run ReLU/BN on a 30-60x smaller
        # tensor. About half the channels have a negative scale; their min is taken as -max of
        # the conv with negated weights, which is exact, so one max pass serves every channel.
        bn = self.bn
        sign = torch.where(bn.weight < 0, -1.0, 1.0).to(x.dtype)
        weight = self.conv.weight * sign[:, None, None, None]
        bias = self.conv.bias * sign
        before, after = self.time_padding
        if before == after:  # the conv pads by itself: no padded copy of the input
            z = F.conv2d(x, weight, bias, padding=(before, 0))
        else:
            z = F.conv2d(F.pad(x, (0, 0, before, after)), weight, bias)
        return self.normalise(z.amax(dim=3) * sign[:, None])

    def normalise(self, pooled: torch.Tensor) -> torch.Tensor:
        """ReLU -> BN of the conv's max over frequency ``(B, C, time)``."""
        bn = self.bn
        return F.batch_norm(
            F.relu(pooled), bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
        )


class MidendLayer(nn.Module):
    """Conv over time spanning all feature channels (7 frames, zero-padded 3+3) -> ReLU -> BN.

    The original writes it as a 2-D conv of width C on a one-channel image followed by a
    transpose; that is exactly a 1-D conv with C input channels.
    """

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, 7, padding=3)
        self.bn = _batch_norm_1d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Musicnn(nn.Module):
    """``build_musicnn``: musically motivated front-end, dense mid-end, global-pool back-end."""

    feature_names = MUSICNN_FEATURES

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        filters_midend: int = 64,
        units_backend: int = 200,
        n_mels: int = N_MELS,
        frontend_scale: float = 1.6,
    ):
        super().__init__()
        timbral_filters = int(frontend_scale * 128)
        temporal_filters = int(frontend_scale * 32)
        self.input_bn = _batch_norm_2d(1)
        self.timbral = nn.ModuleList(
            FrontendBlock(timbral_filters, (7, int(share * n_mels)), (3, 3)) for share in (0.4, 0.7)
        )
        self.temporal = nn.ModuleList(
            FrontendBlock(temporal_filters, (length, 1), _same_padding(length))
            for length in (128, 64, 32)
        )
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            [
                MidendLayer(frontend_channels, filters_midend),
                MidendLayer(filters_midend, filters_midend),
                MidendLayer(filters_midend, filters_midend),
            ]
        )
        pooled = 2 * (frontend_channels + 3 * filters_midend)
        self.pool_bn = _batch_norm_1d(pooled)
        self.dense = nn.Linear(pooled, units_backend)
        self.dense_bn = _batch_norm_1d(units_backend)
        self.logits = nn.Linear(units_backend, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel patches ``(B, frames, n_mels)`` -> logits ``(B, num_classes)``."""
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and the original's intermediate features, batched, in its (NHWC) layout.

        ``timbral (B, T, 408)``, ``temporal (B, T, 153)``, ``cnn1..3 (B, T, 64)``,
        ``mean_pool``/``max_pool (B, 753)``, ``penultimate (B, 200)``.
        """
        x = self.input_bn(x.unsqueeze(1))  # (B, 1, T, F)
        timbral = [block(x) for block in self.timbral]  # (B, C, T) each
        temporal = [block(x) for block in self.temporal]
        return self._backend(timbral, temporal)

    def forward_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from the front end's maxima over frequency, before ReLU and batch norm:
        ``(B, 561, T)``, the five blocks' channels in order (``albumcover.ear.frontend``)."""
        blocks = list(self.timbral) + list(self.temporal)
        sizes = [block.conv.out_channels for block in blocks]
        maps = [b.normalise(p) for b, p in zip(blocks, pooled.split(sizes, dim=1), strict=True)]
        return self._backend(maps[: len(self.timbral)], maps[len(self.timbral) :])[0]

    def _backend(
        self, timbral: list[torch.Tensor], temporal: list[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        frontend = torch.cat(timbral + temporal, dim=1)

        cnn1 = self.midend[0](frontend)
        cnn2 = self.midend[1](cnn1) + cnn1
        cnn3 = self.midend[2](cnn2) + cnn2
        midend = torch.cat([frontend, cnn1, cnn2, cnn3], dim=1)

        max_pool = midend.amax(dim=2)
        mean_pool = midend.mean(dim=2)
        # TF concatenates (C, 1) max and mean maps on the last axis and flattens row-major, so the
        # dense layer sees them interleaved: max_0, mean_0, max_1, mean_1, ...
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        logits = self.logits(penultimate)
        features = {
            "timbral": torch.cat(timbral, dim=1).transpose(1, 2),
            "temporal": torch.cat(temporal, dim=1).transpose(1, 2),
            "cnn1": cnn1.transpose(1, 2),
            "cnn2": cnn2.transpose(1, 2),
            "cnn3": cnn3.transpose(1, 2),
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": penultimate,
        }
        return logits, features


class VGGBlock(nn.Module):
    """3x3 'same' conv -> ReLU -> BN -> max pool ('valid', TF pool size and strides)."""

    def __init__(self, in_channels: int, filters: int, pool: tuple[int, int], stride: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, 3, padding=1)
        self.bn = _batch_norm_2d(filters)
        self.pool = nn.MaxPool2d(pool, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.bn(F.relu(self.conv(x))))


class VGG(nn.Module):
    """``vgg``: five conv blocks over the (time, freq) image, then one dense layer."""

    feature_names = VGG_FEATURES

    def __init__(self, num_classes: int = NUM_CLASSES, filters: int = 128):
        super().__init__()
        self.input_bn = _batch_norm_2d(1)
        self.blocks = nn.ModuleList(
            [
                VGGBlock(1, filters, (4, 1), 2),
                VGGBlock(filters, filters, (2, 2), 2),
                VGGBlock(filters, filters, (2, 2), 2),
                VGGBlock(filters, filters, (2, 2), 2),
                VGGBlock(filters, filters, (4, 4), 4),
            ]
        )
        # 187 x 96 input -> 2 x 1 after the pools: only 3-second patches fit the dense layer.
        self.dense = nn.Linear(2 * 1 * filters, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel patches ``(B, 187, 96)`` -> logits ``(B, num_classes)``."""
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Logits and ``pool1..pool5`` in the original's NHWC layout, e.g. ``pool1 (B, 92, 48,
        128)``, ``pool5 (B, 2, 1, 128)``."""
        if x.shape[1:] != (PATCH_FRAMES, N_MELS):
            raise ValueError(
                f"VGG models take ({PATCH_FRAMES}, {N_MELS}) patches, got {tuple(x.shape[1:])}"
            )
        x = self.input_bn(x.unsqueeze(1))
        pools = []
        for block in self.blocks:
            x = block(x)
            pools.append(x.permute(0, 2, 3, 1))  # NCHW -> NHWC
        logits = self.dense(pools[-1].flatten(1))  # TF flattens NHWC
        return logits, {f"pool{i + 1}": pool for i, pool in enumerate(pools)}


# name -> (labels, constructor)
ARCHITECTURES: dict[str, tuple[list[str], Callable[[], nn.Module]]] = {
    "MTT_musicnn": (MTT_LABELS, lambda: Musicnn(filters_midend=64, units_backend=200)),
    "MSD_musicnn": (MSD_LABELS, lambda: Musicnn(filters_midend=64, units_backend=200)),
    "MTT_vgg": (MTT_LABELS, lambda: VGG(filters=128)),
    "MSD_vgg": (MSD_LABELS, lambda: VGG(filters=128)),
}


def build_model(name: str) -> nn.Module:
    """An untrained network for one of :data:`ARCHITECTURES` (in eval mode)."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown musicnn model {name!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name][1]().eval()


# --- TF variables -> state dict ------------------------------------------------------------------
# Every converter takes the TF variable scope and returns {torch suffix: (tf name, tensor)}.
# Layout changes: TF conv kernels are (kh, kw, in, out), PyTorch's (out, in, kh, kw); TF dense
# kernels are (in, out), nn.Linear's (out, in).

_Converted = dict[str, tuple[str, np.ndarray]]


def _kernel(tf: Mapping[str, np.ndarray], scope: str, ndim: int) -> np.ndarray:
    kernel = tf[f"{scope}/kernel"]
    if kernel.ndim != ndim:
        raise WeightsError(f"{scope}/kernel: expected {ndim} dimensions, got {kernel.shape}")
    return kernel


def _conv2d(tf: Mapping[str, np.ndarray], scope: str) -> _Converted:
    kernel = _kernel(tf, scope, 4)
    return {
        "weight": (f"{scope}/kernel", kernel.transpose(3, 2, 0, 1)),
        "bias": (f"{scope}/bias", tf[f"{scope}/bias"]),
    }


def _conv_as_conv1d(tf: Mapping[str, np.ndarray], scope: str) -> _Converted:
    # The mid-end's (7, C, 1, out) "image" kernel becomes a Conv1d (out, C, 7) kernel.
    kernel = _kernel(tf, scope, 4)
    if kernel.shape[2] != 1:
        raise WeightsError(f"{scope}/kernel: expected (k, C, 1, out), got {kernel.shape}")
    return {
        "weight": (f"{scope}/kernel", kernel[:, :, 0, :].transpose(2, 1, 0)),
        "bias": (f"{scope}/bias", tf[f"{scope}/bias"]),
    }


def _dense(tf: Mapping[str, np.ndarray], scope: str) -> _Converted:
    return {
        "weight": (f"{scope}/kernel", _kernel(tf, scope, 2).T),
        "bias": (f"{scope}/bias", tf[f"{scope}/bias"]),
    }


def _batch_norm(tf: Mapping[str, np.ndarray], scope: str) -> _Converted:
    return {
        "weight": (f"{scope}/gamma", tf[f"{scope}/gamma"]),
        "bias": (f"{scope}/beta", tf[f"{scope}/beta"]),
        "running_mean": (f"{scope}/moving_mean", tf[f"{scope}/moving_mean"]),
        "running_var": (f"{scope}/moving_variance", tf[f"{scope}/moving_variance"]),
    }


_Layer = tuple[str, Callable[[Mapping[str, np.ndarray], str], _Converted], str]


def _musicnn_layers() -> list[_Layer]:
    # TF's layer names are auto-numbered in creation order (models.py): input BN; the two
    # timbral blocks (74 then 77); the three temporal blocks (128, 64, 32); three mid-end
    # layers; the back-end's BN, dense, BN and output dense.
    layers: list[_Layer] = [("input_bn", _batch_norm, "batch_normalization")]
    blocks = [f"timbral.{i}" for i in range(2)] + [f"temporal.{i}" for i in range(3)]
    for i, block in enumerate(blocks):
        layers.append((f"{block}.conv", _conv2d, f"conv2d_{i}" if i else "conv2d"))
        layers.append((f"{block}.bn", _batch_norm, f"batch_normalization_{i + 1}"))
    for i in range(3):
        layers.append((f"midend.{i}.conv", _conv_as_conv1d, f"conv2d_{i + 5}"))
        layers.append((f"midend.{i}.bn", _batch_norm, f"batch_normalization_{i + 6}"))
    layers += [
        ("pool_bn", _batch_norm, "batch_normalization_9"),
        ("dense", _dense, "dense"),
        ("dense_bn", _batch_norm, "batch_normalization_10"),
        ("logits", _dense, "dense_1"),
    ]
    return layers


def _vgg_layers() -> list[_Layer]:
    layers: list[_Layer] = [("input_bn", _batch_norm, "batch_normalization")]
    for i in range(5):
        layers.append((f"blocks.{i}.conv", _conv2d, f"{i + 1}CNN"))
        layers.append((f"blocks.{i}.bn", _batch_norm, f"batch_normalization_{i + 1}"))
    layers.append(("dense", _dense, "dense"))
    return layers


def _is_training_state(name: str) -> bool:
    # Deliberately skipped: Adam's slot variables (`<var>/Adam`, `<var>/Adam_1`), its bias
    # correction powers and the step counter only matter for resuming training.
    return name.endswith(("/Adam", "/Adam_1")) or name in {
        "beta1_power",
        "beta2_power",
        "global_step",
    }


def convert_tf_weights(
    model: nn.Module, tf_vars: Mapping[str, np.ndarray]
) -> dict[str, torch.Tensor]:
    """Map a TF checkpoint's variables onto ``model``'s state dict, strictly.

    Every tensor the model needs must be present with exactly the converted shape, every TF
    variable must be used (optimizer state aside), or :class:`WeightsError` names the culprits.
    """
    if isinstance(model, Musicnn):
        layers = _musicnn_layers()
    elif isinstance(model, VGG):
        layers = _vgg_layers()
    else:
        raise TypeError(f"no TF name map for {type(model).__name__}")
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing: list[str] = []
    for prefix, convert, scope in layers:
        try:
            converted = convert(tf_vars, scope)
        except KeyError as e:
            missing.append(str(e.args[0]))
            continue
        for suffix, (tf_name, array) in converted.items():
            key = f"{prefix}.{suffix}"
            if key not in expected:
                raise WeightsError(f"name map error: {key} is not a parameter of the model")
            if tuple(array.shape) != tuple(expected[key].shape):
                raise WeightsError(
                    f"{tf_name}: shape {tf_vars[tf_name].shape} converts to {array.shape}, "
                    f"but {key} needs {tuple(expected[key].shape)}"
                )
            if array.dtype != np.float32:
                raise WeightsError(f"{tf_name}: dtype {array.dtype}, expected float32")
            state[key] = torch.from_numpy(np.ascontiguousarray(array))
            used.add(tf_name)
    if missing:
        raise WeightsError(f"checkpoint lacks tensors: {', '.join(sorted(missing))}")
    extra = sorted(n for n in tf_vars if n not in used and not _is_training_state(n))
    if extra:
        raise WeightsError(f"checkpoint has tensors the model does not use: {', '.join(extra)}")
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):  # PyTorch bookkeeping, unused in eval mode
            state[key] = torch.zeros_like(value)
    unfilled = sorted(set(expected) - set(state))
    if unfilled:
        raise WeightsError(f"name map leaves parameters unset: {', '.join(unfilled)}")
    return state


def load_tf_weights(model: nn.Module, tf_vars: Mapping[str, np.ndarray]) -> nn.Module:
    """Convert and load ``tf_vars`` into ``model`` (strict); returns the model in eval mode."""
    model.load_state_dict(convert_tf_weights(model, tf_vars), strict=True)
    return model.eval()
