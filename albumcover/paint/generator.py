"""Cover images from a prompt with a diffusers text-to-image pipeline (SD 1.x/2.x, SDXL, SD 3, ...).

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

from ..prompts import DEFAULT_NEGATIVE_PROMPT, FittedText, fit_text
from . import ovengine
from .checkpoints import is_single_file, load_single_file
from .dtypes import dtype_label, pick_device, prefer_channels_last, resolve_dtype
from .errors import GeneratorError
from .families import ModelFamily, PromptBudget, family_of, pipeline_budget
from .fastpath import FastPath, fuse_lora, set_up_fast_path
from .ovengine import ENGINES

__all__ = ["CoverGenerator", "Cover", "FastPath", "GenerationSettings", "GeneratorError"]

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
    """One painted cover: the image, the seed that reproduces it alone, whether the
    checkpoint's safety checker blanked it, and the words of the prompt and negative prompt
    left out to fit the text encoder's budget (empty when nothing was cut)."""

    image: Image.Image
    seed: int
    nsfw: bool = False
    prompt_cut: str = ""
    negative_cut: str = ""


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


def _looks_like_path(model: str | os.PathLike) -> bool:
    text = os.fspath(model)
    return (
        isinstance(model, os.PathLike)
        or text.startswith((".", "/", "~", "\\"))
        or (len(text) > 1 and text[1] == ":")  # C:\...
        or text.count("/") > 1
        or os.path.exists(text)
    )


def _set_vae(pipe, family: ModelFamily, vae, dtype, local_files_only: bool, name: str) -> None:
    """Swap in ``vae`` when given; else make sure an fp16 SDXL VAE decodes in float32."""
    import torch

    if vae is not None:
        from diffusers import AutoencoderKL

        try:
            pipe.vae = AutoencoderKL.from_pretrained(
                os.fspath(vae), torch_dtype=dtype, local_files_only=local_files_only
            )
        except Exception as e:
            raise GeneratorError(f"cannot load VAE {os.fspath(vae)!r} for {name!r}: {e}") from e
        return
    if family.fp16_vae and dtype == torch.float16 and hasattr(pipe.vae, "config"):
        # SDXL's VAE overflows in float16 (black covers); its pipeline decodes in float32 when
        # force_upcast is set, which some single-file or re-saved configs lose.
        if not pipe.vae.config.get("force_upcast", False):
            pipe.vae.register_to_config(force_upcast=True)
        log.info("%s: VAE decodes in float32 (or pass vae=%r)", name, family.fp16_vae)


def _set_scheduler(pipe, family: ModelFamily) -> None:
    # DPM-Solver++ (2M, Karras sigmas): good covers in ~25 steps instead of PNDM's 50. Only
    # where the family wants it and the checkpoint's scheduler is compatible.
    from diffusers import DPMSolverMultistepScheduler

    if family.scheduler != "dpmsolver++":
        return
    if DPMSolverMultistepScheduler in getattr(pipe.scheduler, "compatibles", ()):
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(
            pipe.scheduler.config, algorithm_type="dpmsolver++", use_karras_sigmas=True
        )


class CoverGenerator:
    """A loaded text-to-image pipeline that paints covers.

    ``family`` (looked up from the pipeline's class when not given) supplies the defaults:
    :meth:`default_settings` for the size, steps and guidance, :attr:`budget` for the prompt's
    token budget. ``fast`` is the few-step sampler the pipeline was set up with, if any;
    ``notes`` what the user should know about how it was set up (e.g. that the few-step path
    fell back to the model's own sampler, and which setting fixes it); ``engine`` what runs the
    denoiser ("torch", or "openvino": :mod:`albumcover.paint.ovengine`).

    Calls to :meth:`generate` are serialised: a diffusers pipeline (its scheduler state) is not
    safe to run from two threads at once, and a web app may call it from several.
    """

    def __init__(
        self,
        pipeline: Any,
        model_id: str = "custom",
        family: ModelFamily | None = None,
        fast: FastPath | None = None,
        notes: tuple[str, ...] = (),
        engine: str = "torch",
    ):
        self.pipeline = pipeline
        self.engine = engine
        self.model_id = model_id
        self.family = family or family_of(pipeline)
        self.fast = fast
        self.notes = tuple(notes)
        self.budget: PromptBudget = pipeline_budget(pipeline, self.family)
        self._lock = threading.Lock()
        pipeline.set_progress_bar_config(disable=True)

    @property
    def device(self) -> torch.device:
        return self.pipeline.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the weights were converted to (bfloat16, float16 or float32)."""
        return self.pipeline.dtype

    @property
    def has_safety_checker(self) -> bool:
        return getattr(self.pipeline, "safety_checker", None) is not None

    @property
    def max_tokens(self) -> int:
        """The prompt's token budget (77 for CLIP families; the T5 limit for SD 3 / FLUX)."""
        return self.budget.max_tokens

    def default_settings(self, **overrides: Any) -> GenerationSettings:
        """Settings for this model: its family's native size, steps and guidance (the fast
        path's steps and guidance when it is on), then ``overrides``."""
        fields = dict(
            steps=self.fast.steps if self.fast else self.family.steps,
            guidance_scale=self.fast.guidance if self.fast else self.family.guidance,
            width=self.family.size,
            height=self.family.size,
        )
        return GenerationSettings(**{**fields, **overrides})

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike,
        lora: str | os.PathLike | None = None,
        device: str | None = None,
        dtype: torch.dtype | str | None = None,
        safety_checker: bool = True,
        local_files_only: bool = False,
        *,
        config: str | os.PathLike | None = None,
        vae: str | os.PathLike | None = None,
        fast: FastPath | bool | None = None,
        fast_fallback: bool = False,
        engine: str = "torch",
        engine_cache: str | os.PathLike | None = None,
    ) -> CoverGenerator:
        """Load a text-to-image checkpoint: a Hub id, a local diffusers folder, or one
        ``.safetensors`` / ``.ckpt`` file (SD 1.x, SD 2.x, SDXL, SD 3, FLUX, ...).

        Args:
            model: e.g. "stabilityai/stable-diffusion-xl-base-1.0", a folder written by
                ``save_pretrained`` (model_index.json, unet/, vae/, ...), or a checkpoint file.
            lora: optional LoRA weights (folder or Hub id) loaded with ``load_lora_weights`` and
                fused into the weights (no per-step cost).
            device: "cuda", "mps", "cpu"...; None picks the best available.
            dtype: a torch dtype or its name ("bfloat16", "bf16", "float32"...); None or "auto":
                float16 on CUDA, bfloat16 on a CPU with AVX512_BF16 or AMX, float32 elsewhere
                (:func:`~albumcover.paint.dtypes.default_dtype`). Every component's weights
                are converted (text encoder, UNet, VAE or tiny VAE, safety checker).
            safety_checker: keep the checkpoint's own safety checker when it has one; False
                removes it (the operator's choice).
            local_files_only: never touch the network, use the local Hub cache or folder only.
            config: for a single file, the base model (diffusers folder or Hub id) whose
                component configs it uses; None infers it from the checkpoint's keys.
            vae: a VAE (folder or Hub id) to paint with instead of the checkpoint's, e.g.
                "madebyollin/sdxl-vae-fp16-fix" for SDXL in float16. Without one, an SDXL VAE
                in float16 decodes in float32 (SDXL's VAE overflows to black images in fp16).
            fast: a :class:`FastPath` (True: the default one) for the few-step sampler.
            fast_fallback: when the fast path's LoRA (or tiny VAE) cannot be loaded, paint with
                the model's own sampler (VAE) instead of raising, and say so in :attr:`notes`.
            engine: what runs the denoiser on a CPU: "torch"; "openvino" (an SD 1.x / 2.x
                UNet in bfloat16 or float32, converted once per model and LoRA and cached in
                ``engine_cache``: :mod:`~albumcover.paint.ovengine`); "auto": OpenVINO where it
                was measured faster (a CPU in bfloat16, OpenVINO installed, a UNet it takes),
                torch elsewhere or when the conversion fails (said in :attr:`notes`).
            engine_cache: the folder of OpenVINO exports; None: the user's cache folder.

        Raises:
            GeneratorError: the model, VAE or LoRA cannot be loaded (missing folder or file,
                unknown id, no network, out of memory, no few-step LoRA for this family, a
                dtype this device cannot run, engine="openvino" where it cannot run); the
                message says what to set instead.
        """
        if engine not in ENGINES:
            raise GeneratorError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")

        hint = (
            "set ALBUMCOVER_MODEL=/path/to/diffusers-folder (a folder with model_index.json, "
            "e.g. written by save_pretrained), a .safetensors checkpoint, or a Hub id "
            "reachable from this machine"
        )
        if not isinstance(model, str | os.PathLike) or not os.fspath(model).strip():
            raise GeneratorError(f"no model given ({model!r}); {hint}")
        name = os.fspath(model)
        single = is_single_file(name)
        if _looks_like_path(model):
            path = Path(name).expanduser()
            if single:
                if not path.is_file():
                    raise GeneratorError(f"checkpoint file {path} does not exist; {hint}")
            elif not (path / "model_index.json").is_file():
                what = "has no model_index.json" if path.is_dir() else "does not exist"
                raise GeneratorError(f"model folder {path} {what}; {hint}")
            name = str(path)
        if fast is True:
            fast = FastPath()
        fast = fast or None

        import torch

        with quiet_loading():
            from diffusers import AutoPipelineForText2Image

        device = device or pick_device()
        try:
            kind = torch.device(device).type
        except (RuntimeError, TypeError) as e:
            raise GeneratorError(f"unknown device {device!r} for model {name!r}: {e}") from e
        try:
            dtype = resolve_dtype(dtype, torch.device(kind))
        except ValueError as e:
            raise GeneratorError(f"model {name!r}: {e}") from e
        kwargs: dict[str, Any] = {}
        if not safety_checker:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        try:
            with quiet_loading():
                if single:
                    cfg = None if config is None else os.fspath(config)
                    pipe = load_single_file(name, cfg, dtype, local_files_only, **kwargs)
                else:
                    pipe = AutoPipelineForText2Image.from_pretrained(
                        name, dtype=dtype, local_files_only=local_files_only, **kwargs
                    )
        except Exception as e:  # any loader failure (no network, bad id, OOM) gets one advice
            raise GeneratorError(f"cannot load model {name!r}: {e}; {hint}") from e
        family = family_of(pipe)
        _set_vae(pipe, family, vae, dtype, local_files_only, name)
        _set_scheduler(pipe, family)
        if lora:
            fuse_lora(pipe, os.fspath(lora), "user", name)
        notes: list[str] = []
        if fast is not None:
            fast, fast_notes = set_up_fast_path(
                pipe, fast, family, dtype, local_files_only, name, fast_fallback
            )
            notes.extend(fast_notes)
        try:
            pipe.to(device)
        except Exception as e:  # out of memory, an unknown device, no driver
            raise GeneratorError(f"cannot move model {name!r} to {device!r}: {e}") from e
        if kind == "cpu":
            prefer_channels_last(pipe)
        engine = ovengine.choose_engine(pipe, engine, kind, dtype, engine_cache, name, notes)
        if safety_checker and getattr(pipe, "safety_checker", None) is None:
            log.info("model %s has no safety checker", name)
        log.info(
            "loaded %s (%s) on %s in %s%s%s%s",
            name,
            family.label,
            device,
            dtype_label(dtype),
            f" + LoRA {lora}" if lora else "",
            f" + fast path ({fast.describe()})" if fast else "",
            f", denoiser in {engine}",
        )
        return cls(pipe, model_id=name, family=family, fast=fast, notes=tuple(notes), engine=engine)

    def count_tokens(self, text: str) -> int:
        """Tokens the text encoder(s) see for ``text``, including the start and end tokens
        (the most over the tokenizers that bind: both of SDXL's; the T5 one of SD 3 / FLUX)."""
        return self.budget.count(text)

    def fit(self, text: str) -> FittedText:
        """``text`` cut at a word break to this model's token budget, with what was cut."""
        return fit_text(text, self.budget.count, self.budget.max_tokens)

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

        The prompt and the negative prompt are cut at a word break to the model's token budget
        (:meth:`fit`); what was left out is in each cover's ``prompt_cut`` / ``negative_cut``.

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
        prompt_fit = self.fit(prompt.strip())
        negative_fit = self.fit(settings.negative_prompt.strip())
        for what, fitted in (("prompt", prompt_fit), ("negative prompt", negative_fit)):
            if fitted.was_cut:  # the app and the CLI tell the user; here only the log
                log.info(
                    "%s over the %d-token budget of %s; left out: %r",
                    what,
                    fitted.max_tokens,
                    self.model_id,
                    fitted.cut,
                )
        if prompt.strip() and not prompt_fit.text:
            raise ValueError(
                f"prompt has no words that fit the {self.max_tokens}-token budget: {prompt!r}"
            )
        n = settings.num_images
        seed = settings.seed
        if seed is None:
            seed = _seeds.randrange(MAX_SEED + 1)
        seeds = variation_seeds(seed, n)
        # CPU generators: the starting noise for a seed is the same on every device.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]

        def on_step_end(pipe, step, timestep, callback_kwargs):
            progress(step + 1, pipe.num_timesteps)
            return callback_kwargs

        # TCD's stochasticity goes with each call (the pipeline hands it to scheduler.step)
        extra = {"eta": self.fast.eta} if self.fast and self.fast.eta is not None else {}
        with self._lock:
            try:
                out = self.pipeline(
                    prompt=prompt_fit.text,
                    negative_prompt=negative_fit.text or None,
                    num_inference_steps=settings.steps,
                    guidance_scale=settings.guidance_scale,
                    width=settings.width,
                    height=settings.height,
                    num_images_per_prompt=n,
                    generator=generators,
                    callback_on_step_end=on_step_end if progress else None,
                    **extra,
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
            Cover(
                image=image.convert("RGB"),
                seed=s,
                nsfw=bool(flag),
                prompt_cut=prompt_fit.cut,
                negative_cut=negative_fit.cut,
            )
            for image, s, flag in zip(out.images, seeds, flags, strict=True)
        ]
