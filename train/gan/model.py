"""DCGAN generator and discriminator, unconditional or conditioned on a category or a prompt.

The study's three baselines share one architecture (Radford et al. 2016) and differ only in how the
condition is embedded:

- ``none``: no condition;
- ``category``: ``nn.Embedding`` over the category vocabulary, one index per image;
- ``prompt``: ``nn.EmbeddingBag`` over the caption's words (``sum`` as in the study, or ``mean``).

The embedding is concatenated to the noise vector in the generator and enters the discriminator
as a projection term (Miyato & Koyama 2018): ``logit = w . phi(x) + <embed(y), phi(x)>``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

CONDITIONS = ("none", "category", "prompt")
RESOLUTIONS = (64, 128)
BAG_MODES = ("sum", "mean")
PAD_INDEX = 0  # token id excluded from EmbeddingBag reductions (prompt padding)


@dataclass(frozen=True)
class GanConfig:
    """Everything needed to rebuild the networks; stored inside every checkpoint.

    ``num_embeddings`` is the size of the condition vocabulary (categories or words, special
    entries included); it is 0 for ``condition="none"``.
    """

    condition: str = "none"
    resolution: int = 64
    latent_dim: int = 100
    g_features: int = 64
    d_features: int = 64
    embed_dim: int = 64
    num_embeddings: int = 0
    bag_mode: str = "sum"
    channels: int = 3

    def __post_init__(self):
        if self.condition not in CONDITIONS:
            raise ValueError(f"condition must be one of {CONDITIONS}, got {self.condition!r}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {self.resolution}")
        if self.bag_mode not in BAG_MODES:
            raise ValueError(f"bag_mode must be one of {BAG_MODES}, got {self.bag_mode!r}")
        for name in ("latent_dim", "g_features", "d_features", "embed_dim", "channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.conditional and self.num_embeddings < 2:
            raise ValueError(
                f"condition {self.condition!r} needs num_embeddings >= 2, got {self.num_embeddings}"
            )

    @property
    def conditional(self) -> bool:
        return self.condition != "none"

    @property
    def num_upsamplings(self) -> int:
        """Stride-2 stages between the 4x4 seed and the output (4 at 64 px, 5 at 128 px)."""
        return int(math.log2(self.resolution)) - 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GanConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown GanConfig fields {unknown}")
        return cls(**data)


def _embedding(config: GanConfig, dim: int) -> nn.Module | None:
    if config.condition == "category":
        return nn.Embedding(config.num_embeddings, dim)
    if config.condition == "prompt":
        return nn.EmbeddingBag(
            config.num_embeddings, dim, mode=config.bag_mode, padding_idx=PAD_INDEX
        )
    return None


def _check_condition(config: GanConfig, cond: torch.Tensor | None, batch: int) -> None:
    if not config.conditional:
        if cond is not None:
            raise ValueError("an unconditional GAN takes no condition")
        return
    if cond is None:
        raise ValueError(f"a {config.condition!r}-conditioned GAN needs a condition tensor")
    want_dim = 1 if config.condition == "category" else 2
    if cond.dim() != want_dim or cond.shape[0] != batch:
        raise ValueError(
            f"{config.condition} condition must have shape "
            f"{'(B,)' if want_dim == 1 else '(B, tokens)'} with B={batch}, got {tuple(cond.shape)}"
        )


class Generator(nn.Module):
    """(z (B, latent_dim), cond) -> images (B, channels, resolution, resolution) in [-1, 1].

    ``cond`` is None, a (B,) long tensor of category ids, or a (B, tokens) long tensor of word ids
    padded with ``PAD_INDEX``.
    """

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        self.embed = _embedding(config, config.embed_dim)
        in_dim = config.latent_dim + (config.embed_dim if config.conditional else 0)
        width = config.g_features * 2 ** (config.num_upsamplings - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, width, 4, 1, 0, bias=False),  # 1x1 -> 4x4
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        for _ in range(config.num_upsamplings - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(inplace=True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, config.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        _check_condition(self.config, cond, z.shape[0])
        if self.embed is not None:
            z = torch.cat([z, self.embed(cond).to(z.dtype)], dim=1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """(images (B, channels, R, R) in [-1, 1], cond) -> real/fake logits (B,)."""

    def __init__(self, config: GanConfig):
        super().__init__()
        self.config = config
        width = config.d_features
        # no BatchNorm on the first layer, as in DCGAN
        layers: list[nn.Module] = [
            nn.Conv2d(config.channels, width, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for _ in range(config.num_upsamplings - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        self.features = nn.Sequential(*layers)  # -> (B, width, 4, 4)
        self.out = nn.Conv2d(width, 1, 4, 1, 0, bias=False)
        self.embed = _embedding(config, width)
        if self.embed is not None:
            # small, like the conv weights: at N(0, 1) the projection term alone saturates D's
            # logits at the first step (a sum over ~20 words of width-512 dot products)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, images: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        _check_condition(self.config, cond, images.shape[0])
        h = self.features(images)
        logits = self.out(h).flatten()
        if self.embed is not None:
            # projection discriminator: the condition scores how well the pooled features match it
            pooled = h.mean(dim=(2, 3))
            logits = logits + (self.embed(cond).to(pooled.dtype) * pooled).sum(dim=1)
        return logits


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_models(config: GanConfig) -> tuple[Generator, Discriminator]:
    """Fresh, DCGAN-initialised generator and discriminator for ``config``."""
    generator, discriminator = Generator(config), Discriminator(config)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    return generator, discriminator
