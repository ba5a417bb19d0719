"""Cover images from a prompt with a diffusers text-to-image pipeline (Stable Diffusion 1.x first).

One :class:`CoverGenerator` owns one loaded pipeline. ``generate`` paints 1-4 variations in one
batched call; variation k uses its own generator seeded ``seed + k`` (wrapping from
:data:`MAX_SEED` to 0), so any single cover can be painted again alone from the seed shown next to
it, and every seed shown is one that can be typed back.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .prompts import CLIP_MAX_TOKENS, DEFAULT_NEGATIVE_PROMPT, fit_to_tokens, token_counter

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

MAX_IMAGES = 4
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MIN_SIZE, MAX_SIZE = 64, 2048  # pixels
# Seeds are 32-bit: what the app shows and takes from every client (JSON numbers lose precision
# past 2**53), and plenty of distinct covers. Variation seeds wrap around past the top.
MAX_SEED = 2**32 - 1
_seeds = random.Random()  # fresh seeds only; never touches the global or torch RNGs


class GeneratorError(RuntimeError):
    """The model could not be loaded, or ran out of memory while painting."""


@dataclass
class GenerationSettings:
    """How to paint: steps, guidance, seed (None: a random one), 1-4 images, size in pixels."""

    steps: int = 25
    guidance_scale: float = 7.5
    seed: int | None = None
    num_images: int = 1
    width: int = 512
    height: int = 512
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT

    def validate(self) -> GenerationSettings:
        """Raise ValueError naming the first bad field and its allowed range; return self."""

        def integer(name: str, low: int, high: int) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
            return value

        integer("steps", 1, MAX_STEPS)
        integer("num_images", 1, MAX_IMAGES)
        for name in ("width", "height"):
            if integer(name, MIN_SIZE, MAX_SIZE) % 8:
                raise ValueError(f"{name} must be a multiple of 8, got {getattr(self, name)}")
        g = self.guidance_scale
        if isinstance(g, bool) or not isinstance(g, int | float) or not 0 <= g <= MAX_GUIDANCE:
            raise ValueError(f"guidance_scale must be a number in [0, {MAX_GUIDANCE}], got {g!r}")
        if self.seed is not None:
            integer("seed", 0, MAX_SEED)
        if not isinstance(self.negative_prompt, str):
            raise ValueError(f"negative_prompt must be text, got {self.negative_prompt!r}")
        return self


@dataclass
class Cover:
    """One painted cover: the image, the seed that reproduces it alone, and whether the
    checkpoint's safety checker blanked it."""

    image: Image.Image
    seed: int
    nsfw: bool = False


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide what loading a pipeline prints that is no news to the user: diffusers' and
    transformers' per-component progress bars, and transformers' notice, on every start, that
    torchvision is missing (its PIL image processors serve the safety checker as well).
    Downloads keep huggingface_hub's own progress bars; everything is restored afterwards."""
    from diffusers.utils import logging as diffusers_logging
    from huggingface_hub import utils as hub
    from transformers.utils import logging as transformers_logging

    bars = (
        diffusers_logging.is_progress_bar_enabled(),
        transformers_logging.is_progress_bar_enabled(),
    )
    hub_bars = not hub.are_progress_bars_disabled()
    notices = logging.getLogger("transformers.utils.import_utils")
    level = notices.level
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()  # (this one also turns off the hub's bars)
    if hub_bars:
        hub.enable_progress_bars()
    notices.setLevel(logging.ERROR)
    try:
        yield
    finally:
        notices.setLevel(level)
        if bars[0]:
            diffusers_logging.enable_progress_bar()
        if bars[1]:
            transformers_logging.enable_progress_bar()
        if not hub_bars:
            hub.disable_progress_bars()


def variation_seeds(seed: int, n: int) -> list[int]:
    """The seeds of ``n`` variations from ``seed``: seed, seed + 1, ... wrapping past MAX_SEED to 0,
    so each stays in [0, MAX_SEED] and reproduces its cover when given alone."""
    return [(seed + k) % (MAX_SEED + 1) for k in range(n)]


def pick_device() -> str:
    """ "cuda" if available, else "mps", else "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _looks_like_path(model: str | os.PathLike) -> bool:
    text = os.fspath(model)
    return (
        isinstance(model, os.PathLike)
        or text.startswith((".", "/", "~", "\\"))
        or (len(text) > 1 and text[1] == ":")  # C:\...
        or text.count("/") > 1
        or os.path.exists(text)
    )


class CoverGenerator:
    """A loaded text-to-image pipeline that paints covers.

    Calls to :meth:`generate` are serialised: a diffusers pipeline (its scheduler state) is not
    safe to run from two threads at once, and a web app may call it from several.
    """

    def __init__(self, pipeline: Any, model_id: str = "custom"):
        self.pipeline = pipeline
        self.model_id = model_id
        self._lock = threading.Lock()
        pipeline.set_progress_bar_config(disable=True)

    @property
    def device(self) -> torch.device:
        return self.pipeline.device

    @property
    def has_safety_checker(self) -> bool:
        return getattr(self.pipeline, "safety_checker", None) is not None

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike,
        lora: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        safety_checker: bool = True,
        local_files_only: bool = False,
    ) -> CoverGenerator:
        """Load a diffusers text-to-image checkpoint (a Hub id or a local folder).

        Args:
            model: e.g. "stable-diffusion-v1-5/stable-diffusion-v1-5" or a folder written by
                ``save_pretrained`` (model_index.json, unet/, vae/, ...).
            lora: optional LoRA weights (folder or Hub id) loaded with ``load_lora_weights`` and
                fused into the weights (no per-step cost).
            device: "cuda", "mps", "cpu"...; None picks the best available.
            dtype: None: float16 on CUDA, float32 elsewhere.
            safety_checker: keep the checkpoint's own safety checker when it has one; False
                removes it (the operator's choice).
            local_files_only: never touch the network, use the local Hub cache or folder only.

        Raises:
            GeneratorError: the model or LoRA cannot be loaded (missing folder, unknown id, no
                network, out of memory); the message says how to point at a local folder.
        """
        hint = (
            "set ALBUMCOVER_MODEL=/path/to/diffusers-folder (a folder with model_index.json, "
            "e.g. written by save_pretrained) or a Hub id reachable from this machine"
        )
        if not isinstance(model, str | os.PathLike) or not os.fspath(model).strip():
            raise GeneratorError(f"no model given ({model!r}); {hint}")
        name = os.fspath(model)
        if _looks_like_path(model):
            folder = Path(name).expanduser()
            if not (folder / "model_index.json").is_file():
                what = "has no model_index.json" if folder.is_dir() else "does not exist"
                raise GeneratorError(f"model folder {folder} {what}; {hint}")
            name = str(folder)

        import torch

        with quiet_loading():
            from diffusers import AutoPipelineForText2Image, DPMSolverMultistepScheduler

        device = device or pick_device()
        try:
            kind = torch.device(device).type
        except (RuntimeError, TypeError) as e:
            raise GeneratorError(f"unknown device {device!r} for model {name!r}: {e}") from e
        if dtype is None:
            dtype = torch.float16 if kind == "cuda" else torch.float32
        kwargs: dict[str, Any] = dict(dtype=dtype, local_files_only=local_files_only)
        if not safety_checker:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        try:
            with quiet_loading():
                pipe = AutoPipelineForText2Image.from_pretrained(name, **kwargs)
        except Exception as e:  # any loader failure (no network, bad id, OOM) gets one advice
            raise GeneratorError(f"cannot load model {name!r}: {e}; {hint}") from e
        # DPM-Solver++ (2M, Karras sigmas): good covers in ~25 steps instead of PNDM's 50. Only
        # where the checkpoint's scheduler is compatible (not for flow-matching models).
        if DPMSolverMultistepScheduler in getattr(pipe.scheduler, "compatibles", ()):
            pipe.scheduler = DPMSolverMultistepScheduler.from_config(
                pipe.scheduler.config, algorithm_type="dpmsolver++", use_karras_sigmas=True
            )
        if lora is not None:
            try:
                pipe.load_lora_weights(os.fspath(lora))
                pipe.fuse_lora(components=list(getattr(pipe, "_lora_loadable_modules", ["unet"])))
            except Exception as e:  # a missing file, a LoRA for another architecture...
                raise GeneratorError(
                    f"cannot load LoRA {os.fspath(lora)!r} into model {name!r}: {e}; point it "
                    "at a folder with pytorch_lora_weights.safetensors"
                ) from e
        try:
            pipe.to(device)
        except Exception as e:  # out of memory, an unknown device, no driver
            raise GeneratorError(f"cannot move model {name!r} to {device!r}: {e}") from e
        if safety_checker and getattr(pipe, "safety_checker", None) is None:
            log.info("model %s has no safety checker", name)
        log.info("loaded %s on %s (%s)%s", name, device, dtype, f" + LoRA {lora}" if lora else "")
        return cls(pipe, model_id=name)

    def count_tokens(self, text: str) -> int:
        """Tokens the text encoder sees for ``text``, including its start and end tokens
        (CLIP keeps 77 and drops the rest)."""
        return token_counter(self.pipeline.tokenizer)(text)

    @property
    def token_budget(self) -> int:
        """Tokens the text encoder reads, start and end tokens included (77 for CLIP)."""
        budget = getattr(self.pipeline.tokenizer, "model_max_length", CLIP_MAX_TOKENS)
        # tokenizers without a limit report a huge sentinel (int(1e30)); CLIP's is the default
        return budget if isinstance(budget, int) and 3 <= budget <= 4096 else CLIP_MAX_TOKENS

    def fit_prompt(self, text: str) -> tuple[str, str]:
        """``text`` split at the text encoder's budget: (what it reads, what it would drop).

        The cut falls between words, so the second part is the user's own text, to show them.
        """
        return fit_to_tokens(text, self.count_tokens, self.token_budget)

    def generate(
        self,
        prompt: str,
        settings: GenerationSettings | None = None,
        progress: Callable[[int, int], None] | None = None,
        allow_empty_prompt: bool = False,
    ) -> list[Cover]:
        """Paint ``settings.num_images`` covers for ``prompt`` in one batched pipeline call.

        Cover k is seeded ``seed + k`` with its own generator, so it comes out the same (on the
        same device and dtype) when painted alone with that seed. ``progress(step, total)`` is
        called after each denoising step. ``allow_empty_prompt``: paint an empty prompt (a
        model fine-tuned on empty captions, recipe caption_mode ``none``) instead of refusing it.

        Returns:
            Covers of ``settings.width`` x ``settings.height`` RGB PIL images, in seed order.

        Raises:
            ValueError: an empty prompt or invalid settings.
            GeneratorError: out of memory.
        """
        import torch

        settings = (settings or GenerationSettings()).validate()
        if not isinstance(prompt, str) or not (prompt.strip() or allow_empty_prompt):
            raise ValueError(f"prompt must be non-empty text, got {prompt!r}")
        if progress is not None and not callable(progress):
            raise ValueError(f"progress must be callable(step, total), got {progress!r}")
        n = settings.num_images
        seed = settings.seed
        if seed is None:
            seed = _seeds.randrange(MAX_SEED + 1)
        seeds = variation_seeds(seed, n)
        # fitted here so CLIP never truncates (and warns) behind the caller's back; callers that
        # want to tell the user what was cut call fit_prompt first
        prompt = self.fit_prompt(prompt.strip())[0]
        negative = self.fit_prompt(settings.negative_prompt.strip())[0]
        # CPU generators: the starting noise for a seed is the same on every device.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

        def on_step_end(pipe, step, timestep, callback_kwargs):
            progress(step + 1, pipe.num_timesteps)
            return callback_kwargs

        with self._lock:
            try:
                out = self.pipeline(
                    prompt=prompt,
                    negative_prompt=negative or None,
                    num_inference_steps=settings.steps,
                    guidance_scale=settings.guidance_scale,
                    width=settings.width,
                    height=settings.height,
                    num_images_per_prompt=n,
                    generator=generators,
                    callback_on_step_end=on_step_end if progress else None,
                )
            except torch.OutOfMemoryError as e:
                raise GeneratorError(
                    f"out of memory painting {n} image(s) of {settings.width}x{settings.height} "
                    f"with {self.model_id!r}: {e}; paint fewer or smaller images"
                ) from e
        flags = getattr(out, "nsfw_content_detected", None) or [False] * n
        if any(flags):
            log.warning("safety checker blanked %d of %d covers", sum(map(bool, flags)), n)
        return [
            Cover(image=image.convert("RGB"), seed=s, nsfw=bool(flag))
            for image, s, flag in zip(out.images, seeds, flags, strict=True)
        ]
