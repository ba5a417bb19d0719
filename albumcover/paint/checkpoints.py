"""Single-file checkpoints (one ``.safetensors`` / ``.ckpt``, the format most community fine-tunes
ship in): which diffusers pipeline class reads one, and loading it with ``from_single_file``.

A single file holds the weights only; the component configs (UNet sizes, scheduler, tokenizers)
come from ``config``: a diffusers folder or Hub id of the base model (e.g.
``stabilityai/stable-diffusion-xl-base-1.0``). Without one, diffusers infers the base model from
the checkpoint's keys and fetches its configs from the Hub once.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from .families import pipeline_class_of

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")

# diffusers' inferred checkpoint types (single_file_utils.infer_diffusers_model_type) -> class
_CLASS_OF_TYPE = (
    ("xl_inpaint", "StableDiffusionXLInpaintPipeline"),
    ("xl_base", "StableDiffusionXLPipeline"),
    ("playground", "StableDiffusionXLPipeline"),
    ("sd3", "StableDiffusion3Pipeline"),
    ("flux", "FluxPipeline"),
    ("v1", "StableDiffusionPipeline"),
    ("v2", "StableDiffusionPipeline"),
)


def is_single_file(model: str | os.PathLike) -> bool:
    """True for a path or URL naming one checkpoint file (by its suffix)."""
    return os.fspath(model).lower().endswith(SINGLE_FILE_SUFFIXES)


def pipeline_class_name(
    checkpoint: str | os.PathLike, config: str | None = None, local_files_only: bool = False
) -> str:
    """The diffusers pipeline class that reads ``checkpoint``: the ``config`` model's
    ``_class_name`` when given, else inferred from the checkpoint's tensor names and shapes
    (read from the safetensors header; no weights are loaded).

    Raises:
        ValueError: no config and the checkpoint's architecture is not recognised (or it is a
            ``.ckpt``, whose keys cannot be read without unpickling it).
    """

    if config is not None:
        name = pipeline_class_of(config, local_files_only=local_files_only)
        if name is None:
            raise ValueError(f"config {config!r} has no model_index.json: not a diffusers model")
        return name
    path = os.fspath(checkpoint)
    hint = (
        "pass the base model it was fine-tuned from as config (--config / ALBUMCOVER_CONFIG), "
        "e.g. stable-diffusion-v1-5/stable-diffusion-v1-5 or "
        "stabilityai/stable-diffusion-xl-base-1.0"
    )
    if not path.lower().endswith(".safetensors") or not Path(path).is_file():
        raise ValueError(f"cannot tell which model {path!r} is; {hint}")
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:  # the header only: names and shapes
        shapes = {k: SimpleNamespace(shape=tuple(f.get_slice(k).get_shape())) for k in f.keys()}
    if any(k.startswith("conditioner.embedders.1.model.") for k in shapes):
        return "StableDiffusionXLPipeline"  # SDXL's second (OpenCLIP) text encoder, any depth
    try:
        kind = infer_diffusers_model_type(shapes)
    except Exception as e:  # its own checks index keys that a partial checkpoint lacks
        raise ValueError(f"cannot tell which model {path!r} is ({e}); {hint}") from e
    for prefix, name in _CLASS_OF_TYPE:
        if kind.startswith(prefix):
            return name
    raise ValueError(f"{path!r} is a {kind!r} checkpoint, not a text-to-image one albumcover reads")


def load_single_file(
    checkpoint: str | os.PathLike,
    config: str | None,
    dtype: Any,
    local_files_only: bool,
    **kwargs: Any,
) -> Any:
    """The pipeline in ``checkpoint``, read by its class's ``from_single_file``."""
    import diffusers

    name = pipeline_class_name(checkpoint, config, local_files_only)
    cls = getattr(diffusers, name, None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise ValueError(f"{name} cannot read single-file checkpoints; convert it to a folder")
    log.info("loading single file %s as %s (config %s)", checkpoint, name, config or "inferred")
    if config is not None:
        kwargs["config"] = config
    return cls.from_single_file(
        os.fspath(checkpoint), torch_dtype=dtype, local_files_only=local_files_only, **kwargs
    )
