"""What running on Hugging Face ZeroGPU asks of the app: the versions it builds, where the models
live, how long and how large a GPU each call asks for, and the optional ahead-of-time compilation
of the denoiser. Decisions only (testable anywhere); ``app.py`` reads the environment and the
page applies them.

ZeroGPU lends a GPU only inside ``@spaces.GPU`` calls, for the ``duration`` the call asks for
(counted against the visitor's daily quota of minutes, so a shorter ask serves more covers and
queues ahead), on half an RTX Pro 6000 Blackwell by default (``size="large"``, 48 GB) or the
whole card (``size="xlarge"``, 96 GB) at twice the quota. Models are moved to ``cuda`` at
start-up, outside those calls (ZeroGPU emulates CUDA there and moves them on demand).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from albumcover.paint.families import ModelFamily
from albumcover.paint.generator import GenerationSettings

# --- versions ZeroGPU builds ------------------------------------------------------------------

# The one list of what ZeroGPU builds; a Space that pins anything else fails to build ("No
# candidate PyTorch version found for ZeroGPU"). Update it from the source when it changes.
ZEROGPU_SOURCE = "huggingface/hub-docs docs/hub/spaces-zerogpu.md, section Supported versions"
ZEROGPU_CHECKED = "2026-08"  # when the list below was read from the source
ZEROGPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")
ZEROGPU_PYTHON = ("3.10.13", "3.12.12")
AOT_MIN_TORCH = (2, 8)  # spaces.aoti_* needs torch.export + AOTInductor packaging of 2.8


def read_front_matter(readme: str) -> dict[str, str]:
    """The top-level ``key: value`` lines of a README's YAML front matter (between the first two
    ``---`` lines), values unquoted; lists and nested keys are skipped. Empty without one."""
    lines = readme.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    fields = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return fields
        match = re.match(r"^([A-Za-z_][\w-]*):\s*(.*?)\s*$", line)
        if match and match.group(2):
            fields[match.group(1)] = match.group(2).strip("\"'")
    return {}  # never closed: not front matter


def read_pin(requirements: str, package: str) -> str | None:
    """The version ``package==X`` pins in a requirements file's text (comments ignored), else
    None (unpinned, a range, or absent)."""
    name = re.escape(package)
    for line in requirements.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(rf"{name}\s*==\s*([\w.+!-]+)(\s*;.*)?", line, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def check_space_versions(python_version: str | None, torch_version: str | None) -> list[str]:
    """What keeps the Space from building on ZeroGPU: each problem with the front matter's
    ``python_version`` and requirements.txt's torch pin, said with the allowed values and the
    source of the list. Empty when both are on the list."""
    problems = []
    where = f"(ZeroGPU's list, {ZEROGPU_SOURCE}, read {ZEROGPU_CHECKED})"
    if python_version not in ZEROGPU_PYTHON:
        problems.append(
            f"README front matter python_version is {python_version!r}; ZeroGPU runs "
            f"{' or '.join(ZEROGPU_PYTHON)} {where}"
        )
    if torch_version not in ZEROGPU_TORCH:
        problems.append(
            f"requirements.txt pins torch {torch_version!r}; ZeroGPU builds only "
            f"{', '.join(ZEROGPU_TORCH)} {where}"
        )
    return problems


# --- where the models live --------------------------------------------------------------------


def model_device(zero_gpu: bool) -> str | None:
    """Where the image model is placed at start-up: ``"cuda"`` on ZeroGPU (its CUDA emulation
    takes the weights outside ``@spaces.GPU``; placing them inside each call is "significantly
    less efficient"), else None: the best device here (CUDA, MPS, else the CPU)."""
    return "cuda" if zero_gpu else None


# --- how long a call asks for -----------------------------------------------------------------


@dataclass(frozen=True)
class GpuCosts:
    """Seconds one :meth:`CoverGenerator.generate` call spends on its parts, for one image of
    ``size`` x ``size`` pixels (the family's native size): ``unet_pass`` one denoiser evaluation
    (a guided step is two), ``decode`` one VAE decode, ``fixed`` the rest of a call (text
    encoding, safety checker, ZeroGPU attaching the GPU and moving the weights in)."""

    unet_pass: float
    decode: float
    fixed: float
    size: int = 512

    @classmethod
    def for_family(cls, family: ModelFamily, tiny_vae: bool = False) -> GpuCosts:
        """ZeroGPU costs from the family's ``gpu_seconds_per_step`` (one guided step of one
        image at its native size: two passes; an estimate, not yet measured on ZeroGPU). The
        decode costs two passes with the full VAE and a fifth of one with a tiny autoencoder:
        the ratios bench_generate measured on the CPU (SD 1.5 at 512 px: VAE decode 31.9 CPU-s,
        UNet pass 17.4, TAESD 3.6). ``fixed``: 5 s for ZeroGPU's attach and weight transfer."""
        unet_pass = family.gpu_seconds_per_step / 2
        decode = unet_pass * (0.2 if tiny_vae else 2.0)
        return cls(unet_pass, decode, fixed=5.0, size=family.size)


DURATION_MARGIN = 1.25  # asked / estimated: a call that outlives its ask is cut off
MAX_DURATION = 300  # seconds: the most one call asks (4 large covers on the slowest family)


def estimate_seconds(settings: GenerationSettings, costs: GpuCosts) -> float:
    """Seconds a call painting ``settings`` is expected to take: fixed + images x pixels /
    native pixels x (passes x pass + decode). Guidance above 1 is classifier-free: two passes
    per step."""
    passes = settings.steps * (2 if settings.guidance_scale > 1 else 1)
    pixels = settings.width * settings.height / (costs.size * costs.size)
    return costs.fixed + settings.num_images * pixels * (passes * costs.unet_pass + costs.decode)


def gpu_duration(
    settings: GenerationSettings, costs: GpuCosts, margin: float = DURATION_MARGIN
) -> int:
    """Whole seconds a call painting ``settings`` asks ZeroGPU for: ``margin`` x
    :func:`estimate_seconds`, at least 1, at most :data:`MAX_DURATION`."""
    return max(1, min(MAX_DURATION, math.ceil(margin * estimate_seconds(settings, costs))))


# --- how large a GPU ---------------------------------------------------------------------------

GPU_GIB = {"large": 48, "xlarge": 96}  # ZeroGPU's sizes: half or all of an RTX Pro 6000
ACTIVATION_GIB_PER_MEGAPIXEL = 3.0  # fp16 latents, attention and the VAE decode, per image
HEADROOM = 0.8  # of a GPU's memory a call may plan to use (CUDA context, fragmentation)


def model_bytes(pipeline: Any) -> int:
    """Bytes of the weights of a diffusers pipeline's torch modules (parameters and buffers)."""
    import torch

    total = 0
    for component in getattr(pipeline, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            tensors = [*component.parameters(), *component.buffers()]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def gpu_size(weights: int, settings: GenerationSettings) -> str:
    """``"large"`` (48 GB) when the weights (bytes) and the activations of ``settings`` fit in
    :data:`HEADROOM` of it, else ``"xlarge"`` (96 GB, twice the quota): the smallest GPU the
    request needs, chosen per call."""
    megapixels = settings.num_images * settings.width * settings.height / 1e6
    need = weights / 2**30 + megapixels * ACTIVATION_GIB_PER_MEGAPIXEL
    return "large" if need <= HEADROOM * GPU_GIB["large"] else "xlarge"


# --- ahead-of-time compilation ----------------------------------------------------------------


def aot_wanted(requested: bool, zero_gpu: bool, torch_version: str) -> tuple[bool, str | None]:
    """Whether to compile the denoiser ahead of time (``spaces.aoti_*``), and a note for the log
    when a request for it is refused: only on ZeroGPU (which supports no ``torch.compile``; a
    plain GPU or CPU runs eagerly) and with torch >= 2.8. Off unless requested."""
    if not requested:
        return False, None
    if not zero_gpu:
        return False, "ALBUMCOVER_AOT=1 applies on ZeroGPU only; running eagerly"
    release = tuple(int(part) for part in re.findall(r"\d+", torch_version)[:2])
    if release < AOT_MIN_TORCH:
        wanted = ".".join(map(str, AOT_MIN_TORCH))
        return False, f"ALBUMCOVER_AOT=1 needs torch >= {wanted}, this is {torch_version}"
    return True, None


AOT_COMPILE_SECONDS = 1500  # what the one compile call asks ZeroGPU for (minutes of inductor)


def compile_denoiser(generator: Any, gpu, settings: GenerationSettings) -> None:
    """Compile ``generator``'s denoiser (the UNet, or a DiT's transformer) ahead of time on
    ZeroGPU and put it in place: one call captures the denoiser's inputs during a one-step
    painting of ``settings``, exports it with a dynamic batch (1-4 variations, with and
    without guidance) and spatial size, compiles it with AOTInductor, and applies it.
    ``gpu``: ``spaces.GPU``. Raises what torch.export or the compiler raise."""
    import inspect

    import spaces
    import torch
    from torch.utils._pytree import tree_map

    pipe = generator.pipeline
    denoiser = getattr(pipe, "unet", None) or pipe.transformer

    def dynamic(value):
        if not isinstance(value, torch.Tensor):
            return None
        # every dimension of the latents may vary (batch, size); the batch of the rest
        dims = range(value.dim()) if value.dim() == 4 else range(min(1, value.dim()))
        return {d: torch.export.Dim.AUTO for d in dims}

    @gpu(duration=AOT_COMPILE_SECONDS)
    def compile_on_gpu():
        with spaces.aoti_capture(denoiser) as call:
            pipe(
                "an album cover",
                num_inference_steps=1,
                guidance_scale=settings.guidance_scale,
                width=settings.width,
                height=settings.height,
            )
        # by name: export's dynamic_shapes follow the forward's signature
        inputs = inspect.signature(denoiser.forward).bind(*call.args, **call.kwargs).arguments
        exported = torch.export.export(
            denoiser,
            args=(),
            kwargs=dict(inputs),
            dynamic_shapes={name: tree_map(dynamic, value) for name, value in inputs.items()},
        )
        return spaces.aoti_compile(exported)

    spaces.aoti_apply(compile_on_gpu(), denoiser)
