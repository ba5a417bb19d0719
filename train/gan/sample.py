"""Draw covers from a trained GAN baseline.

python -m train.gan.sample --checkpoint OUT/latest --prompt "dreamy synth pop" --n 4 --out DIR
python -m train.gan.sample --checkpoint OUT --category rock --n 4 --out DIR
python -m train.gan.sample --checkpoint OUT/checkpoint-500.pt --n 4 --out DIR   # unconditional
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from albumcover.files import OutputDirError, atomic_path, check_writable_dir

from .checkpoint import CheckpointError, load_checkpoint
from .data import Vocabulary, collate_conditions, encode_condition, tokenize
from .model import GanConfig, Generator

logger = logging.getLogger(__name__)


class SampleError(ValueError):
    """A sampling request that does not fit the checkpoint (wrong condition, unknown category)."""


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) floats in [-1, 1] -> (N, H, W, 3) uint8."""
    images = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """Tile (N, H, W, 3) uint8 images into one RGB image, ``nrow`` per row (default ~square),
    separated by ``padding`` black pixels."""
    n, h, w, _ = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.zeros(
        (rows * (h + padding) + padding, nrow * (w + padding) + padding, 3), dtype=np.uint8
    )
    for i, image in enumerate(images):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return Image.fromarray(grid)


class GanSampler:
    """A trained generator plus its condition vocabulary, ready to draw images."""

    def __init__(self, config: GanConfig, generator: Generator, vocab: Vocabulary | None):
        self.config = config
        self.generator = generator.eval()
        self.vocab = vocab

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None):
        """Load the generator of a checkpoint (file, ``latest`` pointer or output folder)."""
        state = load_checkpoint(path)
        try:
            config = GanConfig.from_dict(state["config"])
            generator = Generator(config)
            generator.load_state_dict(state["generator"])
        except (ValueError, TypeError, RuntimeError) as e:
            raise CheckpointError(f"{state['path']}: bad generator config or weights: {e}") from e
        vocab = Vocabulary(state["vocab"]) if state.get("vocab") else None
        if config.conditional and vocab is None:
            raise CheckpointError(f"{state['path']}: {config.condition} GAN without a vocabulary")
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(config, generator.to(device), vocab)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def categories(self) -> list[str]:
        """Valid ``category`` values (category GANs only)."""
        return self.vocab.names if self.config.condition == "category" else []

    def check_request(
        self, prompt: str | None, category: str | None, unknown_category: bool = False
    ) -> None:
        """Raise SampleError unless the condition given matches the checkpoint's (with
        ``unknown_category``, a category the GAN does not know is allowed: it means ``<unk>``)."""
        condition = self.config.condition
        if prompt is not None and category is not None:
            raise SampleError("give either a prompt or a category, not both")
        if condition == "none" and (prompt is not None or category is not None):
            raise SampleError("this GAN is unconditional: it takes neither a prompt nor a category")
        if condition == "prompt" and prompt is None:
            raise SampleError("this GAN is prompt-conditioned: give a prompt")
        if condition == "category":
            if category is None:
                raise SampleError(
                    f"this GAN is category-conditioned: give a category, one of {self.categories}"
                )
            if category not in self.categories and not unknown_category:
                raise SampleError(
                    f"unknown category {category!r}; this GAN knows: {', '.join(self.categories)}"
                )

    @torch.no_grad()
    def generate(
        self,
        prompt: str | None = None,
        category: str | None = None,
        n: int = 1,
        seed: int | None = None,
        unknown_category: bool = False,
    ) -> list[Image.Image]:
        """``n`` RGB images (resolution x resolution) for the prompt or category (or neither for
        unconditional GANs). Same seed, same images. An unknown category is an error unless
        ``unknown_category`` (then it is drawn as ``<unk>``, as in training)."""
        self.check_request(prompt, category, unknown_category)
        if n < 1:
            raise SampleError(f"n must be >= 1, got {n}")
        if prompt is not None:
            words = tokenize(prompt)
            unknown = [w for w in words if w not in self.vocab]
            if not words or len(unknown) == len(words):
                logger.warning("no word of prompt %r is in the GAN's vocabulary", prompt)
        generator = torch.Generator()
        if seed is None:
            generator.seed()  # fresh entropy, without reseeding torch's global RNG
        else:
            generator.manual_seed(seed)
        z = torch.randn(n, self.config.latent_dim, generator=generator).to(self.device)
        ids = encode_condition(
            self.config.condition, self.vocab, text=prompt or "", category=category or ""
        )
        cond = collate_conditions(self.config.condition, [ids] * n)
        images = self.generator(z, None if cond is None else cond.to(self.device))
        return [Image.fromarray(a) for a in to_uint8(images)]


def parse_args(input_args: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Draw covers from a GAN baseline checkpoint.")
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="checkpoint-<step>.pt, a 'latest' pointer file, or a training output folder",
    )
    parser.add_argument("--prompt", default=None, help="caption (prompt-conditioned GANs)")
    parser.add_argument("--category", default=None, help="category (category-conditioned GANs)")
    parser.add_argument("--n", type=int, default=4, help="number of images")
    parser.add_argument("--out", required=True, help="folder for sample-000.png, ... and grid.png")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: auto)")
    args = parser.parse_args(input_args)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    if args.prompt is not None and args.category is not None:
        parser.error("give --prompt or --category, not both")
    return args


def main(args: argparse.Namespace) -> list[Path]:
    """Write the images and their grid; return the image paths.

    Raises:
        OutputDirError: ``--out`` cannot be created or written (checked before the checkpoint
            loads).
    """
    out = Path(args.out)
    check_writable_dir(out, "--out")
    sampler = GanSampler.from_checkpoint(args.checkpoint, device=args.device)
    images = sampler.generate(prompt=args.prompt, category=args.category, n=args.n, seed=args.seed)
    paths = []
    for i, image in enumerate(images):
        paths.append(out / f"sample-{i:03d}.png")
        with atomic_path(paths[-1]) as tmp:
            image.save(tmp, format="PNG")
    with atomic_path(out / "grid.png") as tmp:
        make_grid(np.stack([np.asarray(i) for i in images])).save(tmp, format="PNG")
    logger.info("wrote %d images to %s", len(paths), out)
    return paths


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main(parse_args())
    except (SampleError, CheckpointError, OutputDirError) as e:
        sys.exit(f"error: {e}")
