"""LoRA adapters: added to the UNet (and text encoders), saved in checkpoints and in the output.

Adapters start at the base model exactly (gaussian A, zero B) and train in float32 on top of
frozen half-precision weights. Checkpoints hold only the adapters (``<part>_lora.safetensors``),
not a copy of the base model; the output is diffusers' ``pytorch_lora_weights.safetensors``
(``unet.*``, ``text_encoder.*``, ``text_encoder_2.*`` keys), which ``load_lora_weights`` reads.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .family import TrainingError

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def lora_config(rank: int, targets: list[str]):
    from peft import LoraConfig

    # alpha = rank: scale 1, so the learning rate means the same at every rank
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights="gaussian")


def add_adapters(unet, text_encoders: list, rank: int) -> None:
    """Add rank-``rank`` LoRA adapters to ``unet`` and each of ``text_encoders`` (possibly
    none); only the adapters train, in float32."""
    from peft import inject_adapter_in_model

    unet.add_adapter(lora_config(rank, UNET_LORA_TARGETS))
    for encoder in text_encoders:
        # What diffusers' add_adapter does for the UNet, through peft's public API:
        # transformers' own add_adapter demands peft >= 0.22, newer than our pin.
        config = lora_config(rank, TEXT_LORA_TARGETS)
        inject_adapter_in_model(config, encoder, adapter_name="default")
        encoder.peft_config = {"default": config}  # read by get_peft_*
    for model in [unet, *text_encoders]:
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.float()


def adapter_state(model) -> dict[str, torch.Tensor]:
    """The adapter weights of ``model`` (peft names), detached on the CPU."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


class CheckpointHooks:
    """accelerate save/load-state hooks that store the adapters of the prepared models, named
    by ``name_of(model)`` ("unet", "text_encoder", "text_encoder_2"), instead of full weights."""

    def __init__(self, accelerator, name_of):
        self.accelerator, self.name_of = accelerator, name_of
        accelerator.register_save_state_pre_hook(self.save)
        accelerator.register_load_state_pre_hook(self.load)

    def save(self, models, weights, folder) -> None:
        from safetensors.torch import save_file

        for model in models:
            state = adapter_state(self.accelerator.unwrap_model(model))
            save_file(state, Path(folder) / f"{self.name_of(model)}_lora.safetensors")
        weights.clear()  # accelerate saves nothing else of these models

    def load(self, models, folder) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        while models:
            model = models.pop()
            path = Path(folder) / f"{self.name_of(model)}_lora.safetensors"
            result = set_peft_model_state_dict(
                self.accelerator.unwrap_model(model), load_file(path)
            )
            unexpected = getattr(result, "unexpected_keys", None)
            if unexpected:
                raise TrainingError(f"{path} does not fit this model: {unexpected[:3]} ...")


def save_lora_output(pipeline_class, folder: Path, unet, text_encoders: dict) -> None:
    """Write ``folder/pytorch_lora_weights.safetensors`` with ``pipeline_class.save_lora_weights``
    (SD or SDXL); ``text_encoders`` maps "text_encoder"/"text_encoder_2" to trained encoders."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import get_peft_model_state_dict

    def layers(model):
        return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))

    kwargs = {
        "unet_lora_layers": layers(unet),
        "unet_lora_adapter_metadata": unet.peft_config["default"].to_dict(),
    }
    for name, encoder in text_encoders.items():
        kwargs[f"{name}_lora_layers"] = layers(encoder)
        kwargs[f"{name}_lora_adapter_metadata"] = encoder.peft_config["default"].to_dict()
    pipeline_class.save_lora_weights(folder, weight_name=LORA_WEIGHTS, **kwargs)
