"""The base model's parts loaded for training, and the text and size conditioning of a batch.

SD 1.x/2.x: one CLIP tokenizer and text encoder, whose last hidden state the UNet attends to.
SDXL: two (the second with a projection); the UNet attends to both penultimate hidden states
concatenated, and takes the second's pooled embedding plus six size/crop numbers (``add_time_ids``:
original height and width, crop top and left, target height and width) as extra conditioning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from .family import Family, TrainingError

logger = logging.getLogger(__name__)


@dataclass
class Models:
    """The loaded parts; ``text_encoders`` and ``tokenizers`` are in the family's order."""

    family: Family
    tokenizers: list[Any]
    text_encoders: list[torch.nn.Module]
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: Any


def load_part(what: str, loader, *args, **kwargs):
    """``loader(*args, **kwargs)``, its load failures raised as TrainingError naming ``what``."""
    try:
        return loader(*args, **kwargs)
    except (OSError, ValueError) as e:
        raise TrainingError(f"cannot load the {what} of {args[0]!r}: {e}") from e


def load_models(args, family: Family, device, dtype: torch.dtype) -> Models:
    """Load tokenizers, text encoders, VAE, UNet and the DDPM training scheduler of
    ``args.pretrained_model_name_or_path`` (VAE from ``--pretrained_vae_model_name_or_path``
    when given).

    Frozen parts only run forward, so they load in the mixed-precision ``dtype``; trained ones
    stay float32 (autocast runs the maths in half precision). The SDXL VAE stays float32 unless
    another VAE is given: the original overflows in fp16.
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    base = args.pretrained_model_name_or_path
    common = {"revision": args.revision}
    tokenizers = [
        load_part(name.replace("_", " "), CLIPTokenizer.from_pretrained, base, subfolder=name,
                  **common)
        for name in family.tokenizers
    ]  # fmt: skip
    noise_scheduler = load_part(
        "scheduler", DDPMScheduler.from_pretrained, base, subfolder="scheduler", **common
    )
    weights = {**common, "variant": args.variant}
    full_text_encoder = args.train_text_encoder and not args.use_lora
    te_dtype = torch.float32 if full_text_encoder else dtype
    encoders = []
    for name in family.text_encoders:
        cls = CLIPTextModelWithProjection if name == "text_encoder_2" else CLIPTextModel
        model = load_part(
            name.replace("_", " "), cls.from_pretrained, base, subfolder=name, dtype=te_dtype,
            **weights,
        )  # fmt: skip
        model.requires_grad_(full_text_encoder)
        encoders.append(model.to(device))
    if args.pretrained_vae_model_name_or_path:
        vae_source, vae_kwargs = args.pretrained_vae_model_name_or_path, {}
        vae_dtype = dtype
    else:
        vae_source, vae_kwargs = base, {"subfolder": "vae", **weights}
        vae_dtype = torch.float32 if family.is_xl and dtype == torch.float16 else dtype
    vae = load_part("VAE", AutoencoderKL.from_pretrained, vae_source, dtype=vae_dtype, **vae_kwargs)
    vae.requires_grad_(False)
    unet_dtype = dtype if args.use_lora else torch.float32
    unet = load_part(
        "UNet", UNet2DConditionModel.from_pretrained, base, subfolder="unet", dtype=unet_dtype,
        **weights,
    )  # fmt: skip
    unet.requires_grad_(not args.use_lora)
    if family.is_xl and getattr(unet.config, "addition_embed_type", None) != "text_time":
        raise TrainingError(f"{base!r}: an SDXL UNet without text_time conditioning")
    return Models(family, tokenizers, encoders, vae.to(device), unet.to(device), noise_scheduler)


def encode_text(
    family: Family, text_encoders: list, input_ids: list[torch.Tensor]
) -> tuple[torch.Tensor, Any]:
    """Text conditioning of a batch: ``input_ids`` holds (B, 77) ids per tokenizer, in the order
    of ``text_encoders`` (the family's).

    Returns the UNet's ``encoder_hidden_states`` (B, 77, D) and, for SDXL, the pooled embedding
    (B, P) of the second encoder (None for SD).
    """
    if not family.is_xl:
        (encoder,) = text_encoders
        return encoder(input_ids[0].to(encoder.device), return_dict=False)[0], None
    hidden, pooled = [], None
    for encoder, ids in zip(text_encoders, input_ids, strict=True):
        out = encoder(ids.to(encoder.device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])  # SDXL conditions on the penultimate layer
        pooled = out.text_embeds if hasattr(out, "text_embeds") else out.pooler_output
    return torch.cat(hidden, dim=-1), pooled


def time_ids(batch: dict[str, torch.Tensor], resolution: int) -> torch.Tensor:
    """SDXL's (B, 6) size and crop conditioning: original (height, width), crop (top, left),
    target (height, width), in pixels, as diffusers' SDXL training scripts compute it."""
    original, crop = batch["original_size"], batch["crop_top_left"]
    target = torch.tensor([resolution, resolution]).expand(original.shape[0], 2)
    return torch.cat([original, crop, target], dim=1)


def batch_input_ids(batch: dict[str, torch.Tensor], family: Family) -> list[torch.Tensor]:
    """The (B, 77) ids per tokenizer of a collated batch, in the family's order."""
    keys = ["input_ids"] + [f"input_ids_{i + 1}" for i in range(1, len(family.tokenizers))]
    return [batch[key] for key in keys]
