"""Tag a song with a pretrained Musicnn model: load once, tag many.

``Tagger.load("MTT_musicnn").tag("song.mp3")`` decodes the song (16 kHz mono), cuts its log-mel
spectrogram into 3 s patches, runs them through the network in batches and returns a
:class:`TagResult`: the taggram (per-patch sigmoid scores), the mean score of each label and the
top tags.  Results match the original musicnn 0.1.0 (see ``tests/ear/test_musicnn.py``).
``tag_songs`` tags several songs' patches in one go (batches across songs, for a GPU).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..recipe import DEFAULT_TAGGER
from . import ortengine
from .audio import load_audio
from .features import seconds_to_frames, song_patches
from .frontend import GemmFrontend
from .musicnn import ARCHITECTURES, N_MELS, PATCH_FRAMES, Musicnn
from .weights import DEFAULT_INDEX_URL, default_cache_dir, load_model

log = logging.getLogger(__name__)

MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
DEFAULT_MODEL = DEFAULT_TAGGER  # one source of the default: albumcover.recipe
# Patches per forward pass. On a 2-core AVX2 CPU, 1..8 cost the same CPU time per patch and 16
# slightly more (the activations, ~25 MB per patch, outgrow the caches); GPUs want more.
DEFAULT_BATCH_SIZE = 8
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# what runs Musicnn on a CPU: "auto" picks ONNX Runtime for float32 where it is installed (the
# fastest measured, albumcover.ear.ortengine), else the OpenBLAS front end (albumcover.ear.frontend)
ENGINES = ("auto", "onnx", "gemm", "torch")
# Features the original returns one row per patch; the others it returns per frame, patch
# after patch (np.squeeze of each batch of one, concatenated along the first axis).
_PER_PATCH_FEATURES = ("mean_pool", "max_pool", "penultimate")


@dataclass
class TagResult:
    """What a model heard in a song.

    ``taggram``: (n_patches, n_labels) float32 sigmoid scores, one row per 3 s patch.
    ``scores``: label -> mean score over the patches, in label order.
    ``tags``: the ``top`` labels by mean score, best first.
    ``features``: intermediate activations when asked for, laid out as the original extractor
    returns them (musicnn: ``timbral`` (n*187, 408), ``temporal`` (n*187, 153), ``cnn1..3``
    (n*187, 64), ``mean_pool``/``max_pool`` (n, 753), ``penultimate`` (n, 200); vgg:
    ``pool1`` (n*92, 48, 128) ... ``pool5`` (n*2, 128)).
    """

    model: str
    labels: list[str]
    taggram: np.ndarray
    scores: dict[str, float]
    tags: list[str]
    features: dict[str, np.ndarray] | None = None


def bf16_supported(device: torch.device) -> bool:
    """Whether bfloat16 runs natively (not emulated, ~10x slower than float32) on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(flag, False) for flag in ("avx512_bf16", "amx_bf16", "bf16"))


def default_dtype(device: torch.device) -> torch.dtype:
    """The dtype :meth:`Tagger.load` picks when none is given: bfloat16 on a CPU that runs it
    natively (AVX512_BF16 or AMX: about 1.5x the float32 speed, the same top tags), else
    float32 (on CUDA too: pass bfloat16/float16 explicitly for batches of many songs)."""
    if device.type == "cpu" and bf16_supported(device):
        return torch.bfloat16
    return torch.float32


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The torch device ``device`` names ("cpu", "cuda", "cuda:1"; None: CUDA when available);
    ValueError for a malformed name, an unsupported type, or CUDA where there is none."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"invalid device {device!r}: {e}") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return resolved


def _original_layout(name: str, batched: np.ndarray) -> np.ndarray:
    if name in _PER_PATCH_FEATURES:
        return batched
    # np.squeeze on a batch of one also drops every other size-1 axis (vgg's pool5 width).
    per_patch = [d for d in batched.shape[1:] if d != 1]
    return batched.reshape(len(batched) * per_patch[0], *per_patch[1:])


def _checked_patches(patches: np.ndarray, what: str) -> np.ndarray:
    """``patches`` as C-contiguous, writable float32 ``(n >= 1, 187, 96)``; ValueError naming
    ``what`` otherwise."""
    patches = np.asarray(patches)
    if patches.ndim != 3 or patches.shape[1:] != (PATCH_FRAMES, N_MELS) or not len(patches):
        raise ValueError(
            f"{what} must have shape (n >= 1, {PATCH_FRAMES}, {N_MELS}), got {patches.shape}"
        )
    # torch.from_numpy wants writable memory; read-only inputs (np.load, mmap) get copied
    return np.require(patches, dtype=np.float32, requirements=["C", "W"])


class Tagger:
    """A pretrained Musicnn/VGG tagger on a device; ``tag`` is safe to call repeatedly."""

    def __init__(
        self,
        model_name: str,
        network: torch.nn.Module,
        labels: list[str],
        *,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        batch_size: int = DEFAULT_BATCH_SIZE,
        engine: str = "auto",
        cache_dir: str | Path | None = None,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
        self.model_name = model_name
        self.network = network.eval()
        self.labels = list(labels)
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self._gemm = None  # GemmFrontend, built on first use where it applies
        self._ort = None  # OrtNetwork, likewise
        self._cache_dir = cache_dir
        self.engine = self._choose_engine(engine)

    def _choose_engine(self, asked: str) -> str:
        """What runs the network: "onnx" (ONNX Runtime, :mod:`albumcover.ear.ortengine`: Musicnn in
        float32 on a CPU, where onnxruntime is installed), "gemm" (the front end as OpenBLAS
        sgemm, :mod:`albumcover.ear.frontend`: Musicnn in float32 or bfloat16 on a CPU) or "torch"
        (everything else, and the features path)."""

        cpu = self.device.type == "cpu" and isinstance(self.network, Musicnn)
        fp32 = self.dtype == torch.float32
        if asked == "onnx" and not (cpu and fp32 and ortengine.available()):
            raise ValueError(
                "engine='onnx' runs Musicnn in float32 on a CPU with onnxruntime and onnx "
                f"installed; here: {self.model_name} on {self.device} in {self.dtype}, "
                f"onnxruntime {'installed' if ortengine.available() else 'not installed'}"
            )
        if asked == "torch" or not cpu or self.dtype not in (torch.float32, torch.bfloat16):
            return "torch"
        if asked == "auto" and fp32 and ortengine.available():
            return "onnx"
        return "onnx" if asked == "onnx" else "gemm"

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        *,
        dtype: torch.dtype | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        weights_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        index_url: str = DEFAULT_INDEX_URL,
        use_installed: bool = True,
        engine: str = "auto",
    ) -> Tagger:
        """Load pretrained ``model`` (one of :data:`MODELS`) onto ``device``.

        ``device``: "cpu", "cuda", ... (default: CUDA when available). ``dtype``: float32, or
        bfloat16 where the device runs it natively (the convolutions' operands in bf16, sums
        and batch norm in fp32), or float16 on CUDA; None picks :func:`default_dtype` (bf16 on
        CPUs with AVX512_BF16/AMX, logged) and ``dtype=torch.float32`` forces float32. The
        weights come from ``weights_dir``, the installed musicnn package, or the official wheel
        fetched from ``index_url`` (see :mod:`albumcover.ear.weights`). ``engine``: one of
        :data:`ENGINES`; "auto" runs float32 Musicnn on a CPU through ONNX Runtime when it is
        installed (exported once into ``cache_dir``), else through the OpenBLAS front end.
        """
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        resolved = resolve_device(device)
        if dtype is None:
            dtype = default_dtype(resolved)
            if dtype != torch.float32:
                log.info(
                    "%s on %s in %s: the CPU runs it natively (dtype=torch.float32 forces float32)",
                    model,
                    resolved,
                    dtype,
                )
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        if dtype == torch.bfloat16 and not bf16_supported(resolved):
            raise ValueError(
                f"bfloat16 is not supported natively on {resolved} (emulated it is ~10x slower "
                "than float32); use dtype=torch.float32"
            )
        if dtype == torch.float16 and resolved.type != "cuda":
            raise ValueError("float16 is only supported on CUDA; use float32 or bfloat16")

        network = load_model(
            model,
            weights_dir=weights_dir,
            cache_dir=cache_dir,
            index_url=index_url,
            use_installed=use_installed,
        )
        return cls(
            model,
            network.to(resolved),
            ARCHITECTURES[model][0],
            device=resolved,
            dtype=dtype,
            batch_size=batch_size,
            engine=engine,
            cache_dir=cache_dir,
        )

    def __repr__(self) -> str:
        return (
            f"Tagger({self.model_name!r}, device={str(self.device)!r}, "
            f"dtype={self.dtype}, engine={self.engine!r}, batch_size={self.batch_size})"
        )

    def tag(
        self,
        audio: str | Path | np.ndarray,
        *,
        top: int = 3,
        hop_seconds: float | None = None,
        features: bool = False,
    ) -> TagResult:
        """Tag a song: a file path (any format ``load_audio`` reads) or a 16 kHz mono signal.

        ``audio``: path, or (samples,) float array at 16 kHz. ``hop_seconds``: seconds between
        patch starts (default 3, non-overlapping; the original's ``input_overlap``).
        ``features``: also return the intermediate activations (see :class:`TagResult`).
        Raises ``AudioError`` for a file that cannot be decoded, ValueError for bad arguments.
        """

        self._check_top(top)
        hop_frames = PATCH_FRAMES if hop_seconds is None else seconds_to_frames(hop_seconds)
        if isinstance(audio, str | os.PathLike):
            signal = load_audio(audio)
        elif isinstance(audio, np.ndarray):
            signal = audio
        else:
            raise TypeError(f"audio must be a path or a numpy array, got {type(audio).__name__}")
        patches = song_patches(signal, hop_frames=hop_frames)
        return self.tag_patches(patches, top=top, features=features)

    def tag_patches(
        self, patches: np.ndarray, *, top: int = 3, features: bool = False
    ) -> TagResult:
        """Tag log-mel patches ``(n_patches, 187, 96)`` float32 (``features.make_patches``)."""
        self._check_top(top)
        patches = _checked_patches(patches, "patches")
        logits, activations = self._run(patches, features)
        return self._result(logits, top, activations)

    def tag_songs(self, songs: Sequence[np.ndarray], *, top: int = 3) -> list[TagResult]:
        """Tag several songs in one go: one :class:`TagResult` per song, in order.

        ``songs``: each song's log-mel patches ``(n_i, 187, 96)`` float32. Their patches run
        through the network together (concatenated, ``batch_size`` patches per forward pass),
        so on a GPU many short songs fill one batch; each song's taggram (n_i, n_labels) is
        then split back out. Every result equals ``tag_patches(song, top=top)``: exactly on
        the CPU "gemm" engine (each patch is computed alone there;
        ``tests/train/dataset/test_batching.py``), within float rounding where the torch engine
        batches patches of different songs.
        Raises ValueError for an empty list or a song of the wrong shape (named by index).
        """
        self._check_top(top)
        if isinstance(songs, np.ndarray | str | bytes) or not isinstance(songs, Sequence):
            raise ValueError(
                f"songs must be a list of (n, {PATCH_FRAMES}, {N_MELS}) patch arrays, "
                f"got {type(songs).__name__}"
            )
        if not songs:
            raise ValueError("songs is empty: give at least one song's patches")
        checked = [_checked_patches(song, f"song {i}") for i, song in enumerate(songs)]
        sizes = [len(song) for song in checked]
        logits, _ = self._run(np.concatenate(checked), False, sizes)
        return [self._result(part, top) for part in np.split(logits, np.cumsum(sizes)[:-1])]

    def _result(
        self, logits: np.ndarray, top: int, activations: dict[str, np.ndarray] | None = None
    ) -> TagResult:
        """A song's :class:`TagResult` from its logits ``(n_patches, n_labels)``."""
        taggram = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))  # sigmoid without overflow
        taggram = taggram.astype(np.float32)
        mean = taggram.mean(axis=0)
        order = np.argsort(-mean, kind="stable")[:top]
        return TagResult(
            model=self.model_name,
            labels=list(self.labels),
            taggram=taggram,
            scores={label: float(score) for label, score in zip(self.labels, mean, strict=True)},
            tags=[self.labels[i] for i in order],
            features=activations,
        )

    def _check_top(self, top: int) -> None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= len(self.labels):
            raise ValueError(f"top must be an integer from 0 to {len(self.labels)}, got {top!r}")

    def _run(
        self, patches: np.ndarray, features: bool, sizes: list[int] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        """Logits ``(n_patches, n_labels)`` (and activations) of ``patches``, the patches of
        songs of ``sizes`` patches each (None: one song)."""
        if not features and self.engine == "onnx":
            return self._run_onnx(patches), None
        if not features and self.engine == "gemm":
            return self._run_gemm(patches, sizes or [len(patches)]), None
        logits: list[np.ndarray] = []
        collected: dict[str, list[np.ndarray]] = {}
        autocast = torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )
        with torch.inference_mode(), autocast:
            for start in range(0, len(patches), self.batch_size):
                batch = torch.from_numpy(patches[start : start + self.batch_size]).to(self.device)
                if features:
                    out, acts = self.network.forward_features(batch)
                    for name, value in acts.items():
                        collected.setdefault(name, []).append(value.float().cpu().numpy())
                else:
                    out = self.network(batch)
                logits.append(out.float().cpu().numpy())
        if not features:
            return np.concatenate(logits), None
        names = self.network.feature_names
        merged: Mapping[str, np.ndarray] = {n: np.concatenate(collected[n]) for n in names}
        return np.concatenate(logits), {n: _original_layout(n, merged[n]) for n in names}

    def _run_onnx(self, patches: np.ndarray) -> np.ndarray:
        # each patch runs alone, so a song's numbers never depend on the songs batched with it
        threads = torch.get_num_threads()
        if self._ort is None or len(self._ort.sessions) != threads:
            if self._ort is not None:
                self._ort.close()  # torch's thread count changed: new sessions, new threads
            cache = Path(self._cache_dir) if self._cache_dir is not None else default_cache_dir()
            self._ort = ortengine.load_network(
                self.network, self.model_name, cache, threads, PATCH_FRAMES, N_MELS
            )
        return self._ort(patches)

    def _run_gemm(self, patches: np.ndarray, sizes: list[int]) -> np.ndarray:
        if self._gemm is None:
            self._gemm = GemmFrontend(self.network)
        with torch.inference_mode():
            x = torch.from_numpy(patches).unsqueeze(1)
            normalised = self.network.input_bn(x).squeeze(1).numpy()
            threads = torch.get_num_threads()
            bf16 = self.dtype == torch.bfloat16
            pooled = torch.from_numpy(self._gemm(normalised, threads=threads, bf16=bf16))
            # the mid- and back-end are ~0.1 % of the arithmetic: float32 (as autocast's BN),
            # run song by song: their kernels round differently with the batch size (1-2 ulp),
            # and a song's tags must not depend on the songs batched with it
            parts = pooled.split(sizes)
            return np.concatenate([self.network.forward_pooled(p).numpy() for p in parts])


__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "TagResult",
    "Tagger",
    "bf16_supported",
    "default_dtype",
    "resolve_device",
]
