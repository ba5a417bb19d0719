"""Model families: what differs between SD 1.x, SD 2.x, SDXL, SD 3.x and FLUX when painting covers.

One row per family (:data:`FAMILIES`): the native resolution, default steps and guidance, the
scheduler the generator swaps in, the token budget of the text encoder(s), the few-step
distilled LoRAs of the fast path (:class:`FewStepLora`: 1 and 2 steps Hyper-SD, 4 steps
LCM-LoRA), and a rough GPU cost used to size a ZeroGPU request. The
generator looks the family up from the loaded pipeline's class (:func:`family_of`), so the app
and the CLI take their defaults from the model they serve instead of assuming SD 1.5.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..prompts import token_counter

log = logging.getLogger(__name__)

CLIP_TOKENS = 77  # CLIP's context: 75 tokens of text between <|startoftext|> and <|endoftext|>

# FewStepLora.scheduler: LCMScheduler; TCDScheduler (its eta passed per call); DDIMScheduler with
# "trailing" timestep spacing (the last timestep first, as few-step distillations are trained)
LCM, TCD, TRAILING = "lcm", "tcd", "trailing"
FAST_SCHEDULERS = (LCM, TCD, TRAILING)
HYPER_SD = "ByteDance/Hyper-SD"  # one Hub repo, one .safetensors per family and step count


@dataclass(frozen=True)
class FewStepLora:
    """A distilled LoRA that paints in ``steps`` steps when fused on top of any model of its
    family (a user's fine-tune included), with the sampler its authors published for it.

    ``lora``: Hub id or folder; ``weight_name``: the file in it (None: diffusers' default
    ``pytorch_lora_weights.safetensors``); ``scheduler``: one of :data:`FAST_SCHEDULERS`;
    ``guidance``: <= 1 turns classifier-free guidance off (one UNet pass per step); ``eta``:
    TCD's stochasticity (None for the others); ``source``: the model card it comes from.
    """

    steps: int
    lora: str
    weight_name: str | None
    scheduler: str
    guidance: float
    eta: float | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelFamily:
    """How to paint with one family of text-to-image models.

    ``size``: native square side in pixels (and ``max_size`` the largest the UI offers);
    ``steps`` and ``guidance``: defaults of the full sampler; ``scheduler``: ``"dpmsolver++"`` to
    swap in DPM-Solver++ 2M Karras (good covers in ~25 steps), None to keep the checkpoint's own
    (flow-matching models); ``text_tokens``: None when every tokenizer is a 77-token CLIP one,
    else the token budget of the long (T5) encoder, which then carries the prompt;
    ``fast_lora``: the LCM-LoRA Hub id of the fast path at 4 steps (None: no official one);
    ``few_step``: distilled LoRAs for fewer steps (:meth:`few_step_lora` picks one);
    ``fp16_vae``: a VAE that does not overflow in float16 (None: the family's own is fine);
    ``gpu_seconds_per_step``: rough seconds of one denoising step of one image at ``size`` on a
    ZeroGPU slice, with classifier-free guidance (used only to size the GPU request).
    """

    name: str
    label: str
    pipelines: tuple[str, ...]
    size: int
    max_size: int
    steps: int
    guidance: float
    scheduler: str | None = "dpmsolver++"
    text_tokens: int | None = None
    fast_lora: str | None = None
    fp16_vae: str | None = None
    gpu_seconds_per_step: float = 0.05
    few_step: tuple[FewStepLora, ...] = ()

    def few_step_loras(self) -> tuple[FewStepLora, ...]:
        """Every few-step LoRA of the family, fewest steps first (the LCM-LoRA at 4 steps)."""
        lcm = ()
        if self.fast_lora:
            card = f"https://huggingface.co/{self.fast_lora}"
            lcm = (FewStepLora(4, self.fast_lora, None, LCM, 1.0, source=card),)
        return tuple(sorted(self.few_step + lcm, key=lambda f: f.steps))

    def few_step_lora(self, steps: int) -> FewStepLora | None:
        """The LoRA distilled for the most steps not over ``steps`` (the fewest-step one when
        all want more); None when the family has none."""
        loras = self.few_step_loras()
        if not loras:
            return None
        fitting = [f for f in loras if f.steps <= steps]
        return fitting[-1] if fitting else loras[0]


def _hyper_sd(prefix: str, steps: int) -> FewStepLora:
    """Hyper-SD's LoRA for ``steps`` steps with its model card's sampler: the 1-step (unified)
    LoRA with TCDScheduler, eta 1.0; the N-step LoRAs with DDIM "trailing"; guidance 0."""
    card = f"https://huggingface.co/{HYPER_SD}"
    if steps == 1:
        return FewStepLora(1, HYPER_SD, f"{prefix}-1step-lora.safetensors", TCD, 0.0, 1.0, card)
    name = f"{prefix}-{steps}steps-lora.safetensors"
    return FewStepLora(steps, HYPER_SD, name, TRAILING, 0.0, source=card)


FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        ModelFamily(
            "sd1",
            "Stable Diffusion 1.x",
            ("StableDiffusionPipeline",),
            size=512,
            max_size=1024,
            steps=25,
            guidance=7.5,
            fast_lora="latent-consistency/lcm-lora-sdv1-5",
            gpu_seconds_per_step=0.03,
            few_step=(_hyper_sd("Hyper-SD15", 1), _hyper_sd("Hyper-SD15", 2)),
        ),
        ModelFamily(
            "sd2",
            "Stable Diffusion 2.x",
            (),  # same pipeline class as SD 1.x: told apart by the text encoder (OpenCLIP, 1024)
            size=768,
            max_size=1024,
            steps=25,
            guidance=7.5,
            gpu_seconds_per_step=0.05,
        ),
        ModelFamily(
            "sdxl",
            "Stable Diffusion XL",
            ("StableDiffusionXLPipeline",),
            size=1024,
            max_size=1536,
            steps=25,
            guidance=6.0,
            fast_lora="latent-consistency/lcm-lora-sdxl",
            fp16_vae="madebyollin/sdxl-vae-fp16-fix",
            gpu_seconds_per_step=0.12,
            few_step=(_hyper_sd("Hyper-SDXL", 1), _hyper_sd("Hyper-SDXL", 2)),
        ),
        ModelFamily(
            "sd3",
            "Stable Diffusion 3.x",
            ("StableDiffusion3Pipeline",),
            size=1024,
            max_size=1536,
            steps=28,
            guidance=5.0,
            scheduler=None,
            text_tokens=256,  # StableDiffusion3Pipeline's default max_sequence_length
            gpu_seconds_per_step=0.25,
        ),
        ModelFamily(
            "flux",
            "FLUX.1",
            ("FluxPipeline",),
            size=1024,
            max_size=1536,
            steps=28,
            guidance=3.5,
            scheduler=None,
            text_tokens=512,  # FluxPipeline's max_sequence_length (dev; schnell takes 256)
            gpu_seconds_per_step=0.4,
        ),
        ModelFamily(  # anything else AutoPipelineForText2Image loads: its own defaults
            "other",
            "other text-to-image model",
            (),
            size=512,
            max_size=1536,
            steps=25,
            guidance=7.5,
            scheduler=None,
            gpu_seconds_per_step=0.2,
        ),
    )
}
_BY_PIPELINE = {cls: family for family in FAMILIES.values() for cls in family.pipelines}
# AutoPipelineForText2Image may hand back a variant of a family's class (img2img-capable, PAG...)
_PREFIXES = (("StableDiffusionXL", "sdxl"), ("StableDiffusion3", "sd3"), ("Flux", "flux"))


def family_of_class(class_name: str, text_hidden_size: int | None = None) -> ModelFamily:
    """The family of a pipeline class name (e.g. ``"StableDiffusionXLPipeline"``).

    SD 1.x and 2.x share ``StableDiffusionPipeline``: ``text_hidden_size`` (the text encoder's
    width: 768 CLIP ViT-L, 1024 OpenCLIP ViT-H) tells them apart when given.
    """
    family = _BY_PIPELINE.get(class_name)
    if family is None:
        name = next((n for prefix, n in _PREFIXES if class_name.startswith(prefix)), None)
        if name is None and class_name.startswith("StableDiffusion"):
            name = "sd1"
        family = FAMILIES[name or "other"]
    if family.name == "sd1" and text_hidden_size == 1024:
        family = FAMILIES["sd2"]
    return family


def family_of(pipeline: Any) -> ModelFamily:
    """The family of a loaded diffusers pipeline."""
    encoder = getattr(pipeline, "text_encoder", None)
    hidden = getattr(getattr(encoder, "config", None), "hidden_size", None)
    return family_of_class(type(pipeline).__name__, hidden)


# --- token budget --------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptBudget:
    """How many tokens a prompt may take, counted by the model's own tokenizer(s).

    ``count(text)`` is the tokens of ``text`` including start and end tokens, the most over the
    tokenizers that bind (both CLIP tokenizers of SDXL; the T5 one of SD 3 / FLUX, whose CLIP
    encoders only pool and are allowed to truncate); ``max_tokens`` the budget; ``tokenizers``
    the names of the tokenizers counted, for messages.
    """

    count: Callable[[str], int]
    max_tokens: int
    tokenizers: tuple[str, ...]


def _is_clip(tokenizer) -> bool:
    return "CLIP" in type(tokenizer).__name__


def budget_from_tokenizers(
    tokenizers: dict[str, Any], text_tokens: int | None = None
) -> PromptBudget:
    """A :class:`PromptBudget` over a pipeline's tokenizers (``{"tokenizer": ..., ...}``).

    With a non-CLIP (T5) tokenizer present, it alone binds, at ``text_tokens`` (default: its own
    ``model_max_length``); otherwise every CLIP tokenizer binds at the smallest
    ``model_max_length`` among them (77).

    Raises:
        ValueError: no tokenizer at all.
    """
    present = {name: tok for name, tok in tokenizers.items() if tok is not None}
    if not present:
        raise ValueError("the model has no tokenizer: its prompts cannot be counted")
    long = {name: tok for name, tok in present.items() if not _is_clip(tok)}
    # CLIP + T5 (SD 3, FLUX): the T5 encoder carries the prompt, the CLIP ones only pool it
    binding = long or present
    limits = [int(t.model_max_length) for t in binding.values()]
    limit = text_tokens or min(limits)
    if limit > 100_000:  # a tokenizer without a real limit ("1e30"): T5's usual 512
        limit = 512
    counters = [token_counter(tok) for tok in binding.values()]

    def count(text: str) -> int:
        return max(c(text) for c in counters)

    return PromptBudget(count, limit, tuple(binding))


def pipeline_budget(pipeline: Any, family: ModelFamily | None = None) -> PromptBudget:
    """The :class:`PromptBudget` of a loaded pipeline, from its ``tokenizer``, ``tokenizer_2``
    and ``tokenizer_3`` components."""
    family = family or family_of(pipeline)
    names = ("tokenizer", "tokenizer_2", "tokenizer_3")
    return budget_from_tokenizers(
        {n: getattr(pipeline, n, None) for n in names}, family.text_tokens
    )


def load_budget(model: str | os.PathLike, local_files_only: bool = False) -> PromptBudget:
    """The :class:`PromptBudget` of a base model without loading its weights: its tokenizer
    subfolders (a diffusers folder or Hub id: ``tokenizer/``, ``tokenizer_2/``...), or a plain
    tokenizer folder / repo. Used by the dataset builder so training captions are cut exactly
    where the app cuts prompts for that model.

    Raises:
        OSError, ValueError: no such folder or repo, not a tokenizer, or offline.
    """
    from transformers import AutoTokenizer

    model = os.fspath(model)
    index = _model_index(model, local_files_only)
    if index is None:  # not a pipeline: a tokenizer folder or repo itself
        tok = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only)
        return budget_from_tokenizers({"tokenizer": tok})
    tokenizers = {
        name: AutoTokenizer.from_pretrained(
            model, subfolder=name, local_files_only=local_files_only
        )
        for name in ("tokenizer", "tokenizer_2", "tokenizer_3")
        if isinstance(index.get(name), list) and index[name][0] is not None
    }
    family = family_of_class(index.get("_class_name", ""), _text_hidden_size(model, index))
    return budget_from_tokenizers(tokenizers, family.text_tokens)


def _model_index(model: str, local_files_only: bool) -> dict | None:
    """model_index.json of a diffusers folder or Hub repo, or None when it has none."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        path = folder / "model_index.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = hf_hub_download(model, "model_index.json", local_files_only=local_files_only)
    except EntryNotFoundError:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _text_hidden_size(model: str, index: dict) -> int | None:
    folder = Path(model).expanduser() / "text_encoder" / "config.json"
    if folder.is_file() and index.get("text_encoder"):
        return json.loads(folder.read_text(encoding="utf-8")).get("hidden_size")
    return None


def pipeline_class_of(model: str | os.PathLike, local_files_only: bool = False) -> str | None:
    """The ``_class_name`` in a diffusers folder's or Hub repo's model_index.json (None: none)."""
    index = _model_index(os.fspath(model), local_files_only)
    return None if index is None else index.get("_class_name")
