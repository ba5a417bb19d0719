"""The few-step path: a distilled LoRA fused on top of the model (a user's fine-tune included)
with the sampler its authors published, and, when it cannot be loaded, the fallback to the
model's own sampler with a note saying why and what to set.

The LoRA is picked from the family table by step count (:meth:`ModelFamily.few_step_lora`):
Hyper-SD at 1 and 2 steps, LCM-LoRA at 4 or more (SD 1.x and SDXL); ``FastPath.lora`` points
elsewhere (a local copy, another distillation) and ``""`` uses none (a distilled checkpoint).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any

from .errors import GeneratorError
from .families import FAMILIES, FAST_SCHEDULERS, LCM, TCD, ModelFamily

log = logging.getLogger(__name__)

# what the app and the CLI call the two settings a fallback note names
FAST_SETTING = "ALBUMCOVER_FAST=0 (CLI: --no-fast)"
FAST_LORA_SETTING = "ALBUMCOVER_FAST_LORA (CLI: --fast-lora)"


@dataclass(frozen=True)
class FastPath:
    """The few-step sampler: a distilled LoRA fused into the weights, its scheduler, 1-8
    steps, no classifier-free guidance (one UNet pass per step).

    ``steps``: the step count the LoRA is picked for (1 and 2: Hyper-SD, 4: LCM-LoRA, for SD
    1.x and SDXL); ``lora``: LoRA weights (folder, ``.safetensors`` file or Hub id), None: the
    family's for ``steps``, ``""``: none, the checkpoint is itself distilled; ``weight_name``:
    the file inside a Hub repo or folder; ``scheduler`` (one of "lcm", "tcd", "trailing"),
    ``guidance`` and ``eta``: None takes the family's recipe for ``steps`` (LCM, 1.0 where the
    family has none). ``vae``: optionally a tiny autoencoder (``AutoencoderTiny``, e.g.
    "madebyollin/taesd" for SD 1.x, "madebyollin/taesdxl" for SDXL): on a CPU the full VAE's
    decode at 512 px costs about two UNet passes, TAESD's a tenth of one.
    """

    lora: str | None = None
    steps: int = 4
    guidance: float | None = None
    scheduler: str | None = None
    vae: str | None = None
    weight_name: str | None = None
    eta: float | None = None

    def __post_init__(self):
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"fast path steps must be a whole number >= 1, got {self.steps!r}")
        if self.scheduler is not None and self.scheduler not in FAST_SCHEDULERS:
            raise ValueError(
                f"fast path scheduler must be one of {FAST_SCHEDULERS}, got {self.scheduler!r}"
            )

    @classmethod
    def from_option(cls, lora: str | None, vae: str | None = None, steps: int = 4) -> FastPath:
        """The fast path an operator asked for with ``--fast-lora`` / ``ALBUMCOVER_FAST_LORA``
        (None: not set, the family's LoRA for ``steps``; ``"none"``: a distilled checkpoint),
        ``--fast-vae`` / ``ALBUMCOVER_FAST_VAE`` (None: the model's own VAE) and ``--steps`` /
        ``ALBUMCOVER_FAST_STEPS``."""
        none = lora is not None and lora.strip().lower() == "none"
        return cls(lora="" if none else lora, vae=vae or None, steps=steps)

    def resolve(self, family: ModelFamily, name: str) -> FastPath:
        """This path with every None filled from ``family``'s LoRA for :attr:`steps`.

        Raises:
            GeneratorError: no LoRA given and the family has none.
        """
        recipe = family.few_step_lora(self.steps)
        if self.lora is None and recipe is None:
            with_lora = sorted(f.name for f in FAMILIES.values() if f.few_step_loras())
            raise GeneratorError(
                f"no few-step LoRA is known for {family.label} ({name!r}); the fast path has "
                f"one for {with_lora}: pass a few-step LoRA ({FAST_LORA_SETTING}) or 'none' "
                "for an already distilled checkpoint"
            )
        fill: dict[str, Any] = {}
        if self.lora is None:
            fill.update(lora=recipe.lora, weight_name=recipe.weight_name)
        if self.scheduler is None:
            fill["scheduler"] = recipe.scheduler if recipe else LCM
        if self.guidance is None:
            fill["guidance"] = recipe.guidance if recipe else 1.0
        scheduler = fill.get("scheduler", self.scheduler)
        if self.eta is None and scheduler == TCD:
            fill["eta"] = recipe.eta if recipe and recipe.eta is not None else 0.3
        return dataclasses.replace(self, **fill)

    def describe(self) -> str:
        """e.g. "2 steps, Hyper-SD15-2steps-lora.safetensors, DDIM trailing"."""
        lora = self.weight_name or self.lora or "no LoRA (distilled checkpoint)"
        scheduler = {"lcm": "LCM", "tcd": f"TCD eta {self.eta}", "trailing": "DDIM trailing"}
        return f"{self.steps} steps, {os.path.basename(lora) or lora}, {scheduler[self.scheduler]}"


def fuse_lora(pipe, weights: str, adapter: str, name: str, weight_name: str | None = None) -> None:
    """Load a LoRA and fuse it into the weights, so it costs nothing per step and the next
    LoRA (the fast path's on top of the user's) stacks on the fused result."""
    extra = {"weight_name": weight_name} if weight_name else {}
    try:
        pipe.load_lora_weights(weights, adapter_name=adapter, **extra)
        pipe.fuse_lora(
            components=list(getattr(pipe, "_lora_loadable_modules", ["unet"])),
            adapter_names=[adapter],
        )
        pipe.unload_lora_weights()  # the LoRA layers go; the fused weights stay
    except Exception as e:  # a missing file, a LoRA for another architecture, no network...
        where = f"{weights!r}" + (f" (file {weight_name})" if weight_name else "")
        raise GeneratorError(
            f"cannot load LoRA {where} into model {name!r}: {e}; point it at a folder "
            "with pytorch_lora_weights.safetensors made for this model's architecture"
        ) from e


def set_fast_scheduler(pipe, fast: FastPath) -> None:
    """Swap in the scheduler the few-step LoRA was distilled for."""
    from diffusers import DDIMScheduler, LCMScheduler, TCDScheduler

    config = pipe.scheduler.config
    if fast.scheduler == LCM:
        pipe.scheduler = LCMScheduler.from_config(config)
    elif fast.scheduler == TCD:
        pipe.scheduler = TCDScheduler.from_config(config)
    else:  # "trailing": Hyper-SD's N-step LoRAs
        pipe.scheduler = DDIMScheduler.from_config(config, timestep_spacing="trailing")


def set_tiny_vae(pipe, vae: str, dtype, local_files_only: bool, name: str) -> None:
    from diffusers import AutoencoderTiny

    try:
        pipe.vae = AutoencoderTiny.from_pretrained(
            vae, torch_dtype=dtype, local_files_only=local_files_only
        )
    except Exception as e:
        raise GeneratorError(
            f"cannot load the fast path's tiny VAE {vae!r} for {name!r}: {e}"
        ) from e


def _short(error: Exception) -> str:
    text = str(error).split("; point it at")[0].strip()
    return text if len(text) <= 300 else text[:297] + "..."


def set_up_fast_path(
    pipe,
    fast: FastPath,
    family: ModelFamily,
    dtype,
    local_files_only: bool,
    name: str,
    fallback: bool,
) -> tuple[FastPath | None, list[str]]:
    """Fuse ``fast``'s LoRA into ``pipe``, swap in its scheduler and tiny VAE.

    Returns the resolved path (None when it fell back) and the notes for the user. With
    ``fallback``, a LoRA that cannot be loaded (offline, a wrong path, a family without one)
    leaves the model's own sampler in place, and a tiny VAE that cannot be loaded the model's
    own VAE, each with a note naming the settings to change; without it they raise.

    Raises:
        GeneratorError: without ``fallback``, when the LoRA or the tiny VAE cannot be loaded.
    """
    notes: list[str] = []
    try:
        fast = fast.resolve(family, name)
        if fast.lora:
            fuse_lora(pipe, fast.lora, "fast", name, fast.weight_name)
    except GeneratorError as e:
        if not fallback:
            raise
        try:  # a LoRA that failed half-way loaded must not stay as an active adapter
            pipe.unload_lora_weights()
        except Exception:  # nothing was loaded: nothing to unload
            pass
        notes.append(
            f"The few-step path is off: its LoRA could not be loaded ({_short(e)}). Covers are "
            f"painted with the model's own sampler ({family.steps} steps, several times "
            f"slower). Set {FAST_LORA_SETTING} to a local copy of the LoRA to paint in a few "
            f"steps, or {FAST_SETTING} to use the full sampler without this warning."
        )
        log.warning("%s: %s", name, notes[-1])
        return None, notes
    set_fast_scheduler(pipe, fast)
    if fast.vae:
        try:
            set_tiny_vae(pipe, fast.vae, dtype, local_files_only, name)
        except GeneratorError as e:
            if not fallback:
                raise
            notes.append(
                f"The fast path's tiny decoder {fast.vae!r} could not be loaded ({_short(e)}); "
                "covers are decoded with the model's own VAE (slower on a CPU). Set "
                "ALBUMCOVER_FAST_VAE (CLI: --fast-vae) to a local copy."
            )
            log.warning("%s: %s", name, notes[-1])
            fast = dataclasses.replace(fast, vae=None)
    return fast, notes
