"""What albumcover paints with when nothing is configured: the one default that the CLI's
``cover`` and the app share (model, few-step path, its steps, tiny decoder, VAE, engine).

Without a GPU: SD 1.5 with Hyper-SD's 2-step LoRA fused in (DDIM "trailing", no guidance: two
UNet passes per cover), decoded by TAESD, the UNet through OpenVINO where it was measured faster
(engine "auto"); with one: SDXL base 1.0 with the fp16-fix VAE and the full 25-step sampler in
torch. ``docs/models.md`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

GPU_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
GPU_VAE = "madebyollin/sdxl-vae-fp16-fix"  # SDXL's own VAE overflows in float16
CPU_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CPU_FAST_VAE = "madebyollin/taesd"  # on a CPU the full VAE's decode costs ~2 UNet passes
# the fewest steps whose published quality compares with LCM-LoRA at 4 (docs/models.md)
CPU_FAST_STEPS = 2


@dataclass(frozen=True)
class PaintDefaults:
    """``model``; ``vae`` (None: the model's own); ``fast``: the few-step path on;
    ``fast_steps``: the step count its LoRA is picked for; ``fast_vae``: its tiny decoder;
    ``engine``: what runs the denoiser ("auto", "torch" or "openvino": see
    :meth:`~albumcover.paint.generator.CoverGenerator.from_pretrained`)."""

    model: str
    vae: str | None
    fast: bool
    fast_steps: int
    fast_vae: str | None
    engine: str = "torch"


def paint_defaults(
    has_gpu: bool, model: str | None = None, fast: bool | None = None, engine: str | None = None
) -> PaintDefaults:
    """The defaults for a machine with or without a GPU, given what the user chose already
    (``model``, ``fast``, ``engine``: None when not set). The GPU's VAE and the CPU's tiny
    decoder go only with the default model they were picked for; the fast path and the
    OpenVINO engine (where it wins) are on by default without a GPU.
    """
    default_model = GPU_MODEL if has_gpu else CPU_MODEL
    model = model or default_model
    fast = (not has_gpu) if fast is None else fast
    return PaintDefaults(
        model=model,
        vae=GPU_VAE if has_gpu and model == GPU_MODEL else None,
        fast=fast,
        fast_steps=CPU_FAST_STEPS if not has_gpu else 4,
        fast_vae=CPU_FAST_VAE if fast and not has_gpu and model == CPU_MODEL else None,
        engine=engine or ("torch" if has_gpu else "auto"),
    )
