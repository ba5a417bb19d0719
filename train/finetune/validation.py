"""Validation images painted the way the app paints: through ``albumcover``'s CoverGenerator
(the app's scheduler and negative prompt), one grid per validation step.

During training the generator is loaded once from the base model and its UNet, text encoder(s)
and VAE are replaced by the ones being trained, so the images show the current weights with no
copy of them. At the end the images come from the saved output, loaded exactly as the app loads
it (``CoverGenerator.from_pretrained(output)`` or ``(base, lora=output)``): they prove it loads.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from albumcover.files import atomic_path
from albumcover.paint.generator import MAX_IMAGES, MIN_SIZE, CoverGenerator, GenerationSettings

logger = logging.getLogger(__name__)

GRID_FILE = "grid.png"


def make_grid(images: list, columns: int | None = None):
    """One PIL image with ``images`` (same size) in rows of ``columns`` (default: a square-ish
    grid), left to right, top to bottom."""

    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    width, height = images[0].size
    grid = Image.new("RGB", (columns * width, rows * height))
    for i, image in enumerate(images):
        grid.paste(image, ((i % columns) * width, (i // columns) * height))
    return grid


def paint(
    generator,
    prompt: str,
    *,
    num_images: int,
    steps: int,
    size: int,
    seed: int,
    unconditional: bool = False,
) -> list:
    """``num_images`` covers of ``size`` px for ``prompt`` through ``generator.generate`` (the
    app's negative prompt and guidance), seeds ``seed``, ``seed + 1``, ...

    ``unconditional`` (a model trained on empty captions, caption mode ``none``): the empty
    prompt without guidance or negative prompt, whatever ``prompt`` says.
    """

    images = []
    while len(images) < num_images:
        n = min(MAX_IMAGES, num_images - len(images))
        settings = GenerationSettings(
            steps=steps, seed=seed + len(images), num_images=n, width=max(size, MIN_SIZE),
            height=max(size, MIN_SIZE),
        )  # fmt: skip
        if unconditional:
            prompt, settings.guidance_scale, settings.negative_prompt = "", 1.0, ""
        covers = generator.generate(prompt, settings, allow_empty_prompt=unconditional)
        images += [cover.image for cover in covers]
    return images


class Validator:
    """Paints ``args.validation_prompt`` into ``output_dir/validation/step-<N>/`` (numbered PNGs
    and :data:`GRID_FILE`) and hands the images to the trackers."""

    def __init__(self, args, accelerator, output_dir: Path, dtype: torch.dtype):
        self.args, self.accelerator, self.output_dir, self.dtype = (
            args,
            accelerator,
            output_dir,
            dtype,
        )
        self.generator = None
        self.grids: list[tuple[int, Path]] = []  # (step, grid) in painting order
        self.images: list[Path] = []  # the latest step's images

    def paint_training(self, step: int, unet, text_encoders: dict, vae) -> Path:
        """Paint with the modules being trained (unwrapped; ``text_encoders`` by pipeline
        attribute name) at ``step``; returns the grid."""

        if self.generator is None:
            # loaded on the CPU: only its scheduler and tokenizers are kept, the weights swapped
            self.generator = CoverGenerator.from_pretrained(
                self.args.pretrained_model_name_or_path, device="cpu", dtype=self.dtype,
                safety_checker=False,
            )  # fmt: skip
            pipe = self.generator.pipeline
            pipe.unet, pipe.vae = unet, vae
            for name, encoder in text_encoders.items():
                setattr(pipe, name, encoder)
            pipe.to(self.accelerator.device)
        return self._paint(step, self.generator)

    def paint_output(self, step: int, kind: str) -> Path:
        """Paint with the output just saved, loaded as the app loads it; returns the grid."""

        self.generator = None  # the training modules are no longer needed
        base, out = self.args.pretrained_model_name_or_path, self.output_dir
        device = self.accelerator.device
        if kind == "lora":
            generator = CoverGenerator.from_pretrained(
                base, lora=out, device=device, dtype=self.dtype, safety_checker=False
            )
        else:
            generator = CoverGenerator.from_pretrained(
                out, device=device, dtype=self.dtype, safety_checker=False
            )
        grid = self._paint(step, generator)
        del generator
        free_memory()
        return grid

    def _paint(self, step: int, generator) -> Path:
        args = self.args
        with torch.no_grad(), self.accelerator.autocast():
            images = paint(
                generator, args.validation_prompt, num_images=args.num_validation_images,
                steps=args.validation_inference_steps, size=args.resolution, seed=args.seed,
                unconditional=args.caption_mode == "none",
            )  # fmt: skip
        folder = self.output_dir / "validation" / f"step-{step}"
        self.images = []
        for i, image in enumerate(images):
            self.images.append(folder / f"{i:02d}.png")
            with atomic_path(self.images[-1]) as tmp:
                image.save(tmp, format="PNG")
        grid = folder / GRID_FILE
        with atomic_path(grid) as tmp:
            make_grid(images).save(tmp, format="PNG")
        self.grids = [g for g in self.grids if g[0] != step] + [(step, grid)]
        logger.info("validation images: %s", folder)
        self._log(images, step)
        return grid

    def _log(self, images: list, step: int) -> None:
        for tracker in self.accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_images(
                    "validation", np.stack([np.asarray(im) for im in images]), step,
                    dataformats="NHWC",
                )  # fmt: skip
            elif tracker.name == "wandb":
                import wandb

                caption = self.args.validation_prompt
                tracker.log(
                    {"validation": [wandb.Image(im, caption=caption) for im in images]}, step=step
                )


def free_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
