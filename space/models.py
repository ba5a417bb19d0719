"""Loading what the page serves: the Musicnn taggers, the image model (or the error that stopped
it, so the app still analyzes) and the optional diffusion upscaler for the export."""

from __future__ import annotations

import logging

from albumcover.ear.tagger import Tagger
from albumcover.paint.generator import CoverGenerator, FastPath, GeneratorError
from albumcover.recipe import CaptionRecipe
from albumcover.release.export import DiffusionUpscaler, ExportError

log = logging.getLogger("albumcover.app")


def load_taggers(recipe: CaptionRecipe) -> tuple[Tagger, Tagger]:
    """The recipe's caption tagger and genre tagger (one model when they are the same).

    They stay on the CPU (a 30 s song takes well under a second there): on ZeroGPU a GPU exists
    only inside @spaces.GPU functions, and Analyze should not queue for one. Raises ValueError or
    RuntimeError for an unknown name or unreadable weights."""
    tagger = Tagger.load(recipe.caption_tagger, device="cpu")
    if recipe.genre_tagger == recipe.caption_tagger:
        return tagger, tagger
    return tagger, Tagger.load(recipe.genre_tagger, device="cpu")


def load_generator(
    model: str,
    lora: str | None = None,
    safety_checker: bool = True,
    *,
    config: str | None = None,
    vae: str | None = None,
    fast: bool = False,
    fast_lora: str | None = None,
    fast_vae: str | None = None,
    fast_steps: int = 4,
    dtype: str | None = None,
    device: str | None = None,
    engine: str = "torch",
) -> CoverGenerator | GeneratorError:
    """The image model, or the error that stopped it loading (the app then runs without it).

    A few-step LoRA or tiny decoder that cannot be loaded (offline, a local model whose family
    has none) does not stop it: the model paints with its own sampler, and the generator's
    ``notes`` say so and name the settings to change. ``dtype``: a name ("bfloat16"...), None
    for the device's default (bfloat16 on a CPU that runs it natively). ``device``: where to
    place it (None: the best here; ``"cuda"`` on ZeroGPU). ``engine``: what runs the denoiser
    ("auto" falls back to torch, with a note, where OpenVINO cannot run or convert it)."""
    fast_path = FastPath.from_option(fast_lora, fast_vae, fast_steps) if fast else None
    try:
        return CoverGenerator.from_pretrained(
            model,
            lora=lora,
            dtype=dtype,
            safety_checker=safety_checker,
            config=config,
            vae=vae,
            fast=fast_path,
            device=device,
            fast_fallback=True,
            engine=engine,
        )
    except GeneratorError as e:
        log.error("image model %r did not load, Generate is disabled: %s", model, e)
        return e


def load_upscaler(model: str | None, has_gpu: bool) -> DiffusionUpscaler | None:
    """The diffusers x4 upscaler when one is configured and a GPU is here (ZeroGPU's counts),
    else None: the export uses Lanczos."""
    if model is None:
        return None
    if not has_gpu:
        log.warning("ALBUMCOVER_UPSCALER=%s needs a GPU; none here, exports use Lanczos", model)
        return None
    try:
        return DiffusionUpscaler.from_pretrained(model, device="cuda")
    except (ExportError, RuntimeError) as e:
        log.error("upscaler %r did not load, exports use Lanczos: %s", model, e)
        return None
