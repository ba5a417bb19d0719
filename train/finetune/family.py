"""Which diffusers family a base model is (SD 1.x/2.x or SDXL), read from its own config files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class TrainingError(RuntimeError):
    """Training cannot start or continue (unloadable model, incompatible checkpoint, ...)."""


@dataclass(frozen=True)
class Family:
    """What differs between the families the trainer knows: the pipeline class, its text
    encoder and tokenizer subfolders (one for SD, two for SDXL), and the tags of its model card."""

    name: str
    pipeline_class: str
    text_encoders: tuple[str, ...]
    tokenizers: tuple[str, ...]
    hub_tags: tuple[str, ...]

    @property
    def is_xl(self) -> bool:
        return self.name == "sdxl"


SD = Family(
    "sd",
    "StableDiffusionPipeline",
    ("text_encoder",),
    ("tokenizer",),
    ("stable-diffusion", "stable-diffusion-diffusers"),
)
SDXL = Family(
    "sdxl",
    "StableDiffusionXLPipeline",
    ("text_encoder", "text_encoder_2"),
    ("tokenizer", "tokenizer_2"),
    ("stable-diffusion-xl", "stable-diffusion-xl-diffusers"),
)
FAMILIES = {f.pipeline_class: f for f in (SD, SDXL)}


def _read_config(model: str, filename: str, revision: str | None) -> dict:
    """A JSON file of a local diffusers folder or a Hub repo (downloaded alone)."""
    if os.path.isdir(model):
        path = Path(model) / filename
    elif os.path.isabs(model) or model.startswith(".") or model.count("/") > 1:
        raise TrainingError(f"cannot load {filename} of {model!r}: no such folder")
    else:
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(model, filename, revision=revision))
        except Exception as e:  # no network, unknown repo, gated model: all "cannot load"
            raise TrainingError(f"cannot load {filename} of {model!r}: {e}") from e
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TrainingError(f"cannot load {filename} of {model!r}: {e}") from e
    if not isinstance(data, dict):
        raise TrainingError(f"{filename} of {model!r} is not a JSON object")
    return data


def detect_family(model: str, revision: str | None = None) -> Family:
    """The family of the diffusers pipeline ``model`` (folder or Hub id), from the
    ``_class_name`` of its model_index.json.

    Raises:
        TrainingError: no readable model_index.json, or a pipeline class this trainer does not
            fine-tune (the message lists the supported ones).
    """
    index = _read_config(os.fspath(model), "model_index.json", revision)
    name = index.get("_class_name")
    if name not in FAMILIES:
        raise TrainingError(
            f"{model!r} is a {name} pipeline; this trainer fine-tunes {sorted(FAMILIES)} "
            "(SD 1.x/2.x and SDXL base models)"
        )
    return FAMILIES[name]


def native_resolution(model: str, revision: str | None = None) -> int:
    """The image side (pixels) the base model was trained at: the UNet's latent ``sample_size``
    times the VAE's downsampling (512 for SD 1.5, 768 for SD 2.x, 1024 for SDXL)."""
    model = os.fspath(model)
    unet = _read_config(model, "unet/config.json", revision)
    vae = _read_config(model, "vae/config.json", revision)
    try:
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (KeyError, TypeError, ValueError) as e:
        raise TrainingError(f"cannot read the native resolution of {model!r}: {e}") from e
