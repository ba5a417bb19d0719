"""The output folder of a run: the model (a full pipeline, or LoRA weights for the base), what
it is (:data:`OUTPUT_INFO`), the caption recipe, and the model card.

Full fine-tunes are a complete diffusers folder (``from_pretrained``); LoRA runs write only
``pytorch_lora_weights.safetensors`` (``load_lora_weights`` on the base named in the info file
and the card). Both load in ``albumcover.paint.generator.CoverGenerator.from_pretrained``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from albumcover.files import write_atomic
from albumcover.recipe import CaptionRecipe

from .lora import LORA_WEIGHTS, save_lora_output

logger = logging.getLogger(__name__)

OUTPUT_INFO = "albumcover_training.json"


def pipeline_class(family):
    import diffusers

    return getattr(diffusers, family.pipeline_class)


def save_output(
    args, family, output_dir: Path, step: int, unet, text_encoders: dict, vae, ema=None
) -> dict:
    """Write the trained model into ``output_dir``; returns the :data:`OUTPUT_INFO` record.

    ``unet``, ``text_encoders`` ({"text_encoder": ..., "text_encoder_2": ...}: the trained ones
    only) and ``vae`` are unwrapped modules; with ``ema`` the saved UNet holds its weights.
    """
    info = {
        "kind": "lora" if args.use_lora else "full",
        "family": family.name,
        "base_model": args.pretrained_model_name_or_path,
        "revision": args.revision,
        "vae": args.pretrained_vae_model_name_or_path,
        "global_step": step,
        "resolution": args.resolution,
        "caption_mode": args.caption_mode,
        "train_text_encoder": args.train_text_encoder,
    }
    cls = pipeline_class(family)
    if args.use_lora:
        save_lora_output(cls, output_dir, unet, text_encoders)
        info.update(weight_name=LORA_WEIGHTS, rank=args.rank, lora_alpha=args.rank)
    else:
        if ema is not None:
            ema.copy_to(unet.parameters())
        extra = dict(text_encoders)
        if args.pretrained_vae_model_name_or_path:
            extra["vae"] = vae  # the VAE the model was trained with travels with it
        pipe = cls.from_pretrained(
            args.pretrained_model_name_or_path, unet=unet, revision=args.revision,
            variant=args.variant, **extra,
        )  # fmt: skip
        pipe.save_pretrained(output_dir)
        del pipe
        info.update(use_ema=args.use_ema)
    write_atomic(output_dir / OUTPUT_INFO, json.dumps(info, indent=2) + "\n")
    logger.info("saved the %s %s model to %s", family.name, info["kind"], output_dir)
    return info


def save_recipe(recipe: CaptionRecipe, output_dir: Path) -> Path:
    """Copy the caption recipe (with this run's caption mode and base model) into the output,
    where the app reads it to prompt the model as it was trained."""
    path = recipe.save(output_dir)
    logger.info("caption recipe (caption_mode %s) saved to %s", recipe.caption_mode, path)
    return path
