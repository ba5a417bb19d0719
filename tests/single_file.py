"""Write a saved diffusers pipeline (SD 1.x or SDXL) as one original-layout checkpoint file, the
way community fine-tunes ship (``model.diffusion_model.*``, ``first_stage_model.*``, the text
encoders under ``cond_stage_model`` / ``conditioner.embedders``), so tests load it back through
``from_single_file`` exactly as users load a downloaded ``.safetensors``.

diffusers reads this layout but has no writer for it; the key renaming below is the inverse of
its readers (``diffusers.loaders.single_file_utils``), derived from the block structure in the
UNet's and VAE's configs, so it holds for the tiny test models and the full-size ones alike.
"""

import re
from pathlib import Path

import torch

_RESNET = (  # diffusers name -> original (LDM) name inside a UNet resnet
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_VAE_ATTENTION = (
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
)


def _replace_all(text: str, pairs) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def _unet_key(key: str, config: dict) -> str:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    mapping = DIFFUSERS_TO_LDM_MAPPING["unet"]
    top = {**mapping["layers"], **mapping["addition_embed_type"]}
    if key in top:
        return top[key]
    per = config["layers_per_block"] + 1  # resnets (+ attentions) and the down/upsampler slot
    up_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        slot = 0 if kind == "resnets" else 1
        rest = _replace_all(rest, _RESNET) if kind == "resnets" else rest
        return f"input_blocks.{1 + block * per + layer}.{slot}.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * per + per - 1}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_replace_all(m[2], _RESNET)}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        block, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        slot = 0 if kind == "resnets" else 1
        rest = _replace_all(rest, _RESNET) if kind == "resnets" else rest
        return f"output_blocks.{block * per + layer}.{slot}.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        block = int(m[1])
        slot = 2 if up_attention[block] else 1
        return f"output_blocks.{block * per + per - 1}.{slot}.conv.{m[2]}"
    raise KeyError(f"no original name for UNet weight {key}")


def _vae_key(key: str, config: dict) -> str:
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in top:
        return top[key]
    n = len(config["up_block_types"])
    shortcut = (("conv_shortcut", "nin_shortcut"),)
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{_replace_all(m[3], shortcut)}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}.{_replace_all(m[3], shortcut)}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{n - 1 - int(m[1])}.upsample.conv.{m[2]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{_replace_all(m[3], shortcut)}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        return f"{m[1]}.mid.attn_1.{_replace_all(m[2], _VAE_ATTENTION)}"
    raise KeyError(f"no original name for VAE weight {key}")


def _clip_weights(model) -> dict:
    """An HF CLIP text model's weights named as in ``CLIPTextModel`` with its ``text_model.``
    wrapper (transformers >= 5.6 flattens it; the original layout keeps it)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith("position_ids"):
            continue
        if not key.startswith(("text_model.", "text_projection")):
            key = "text_model." + key
        out[key] = value
    return out


def _open_clip_weights(model) -> dict:
    """A ``CLIPTextModelWithProjection`` in OpenCLIP's layout (SDXL's second text encoder):
    fused q/k/v ``in_proj`` weights, ``resblocks``, ``ln_final``, a transposed projection."""
    renames = (
        ("text_model.encoder.layers.", "transformer.resblocks."),
        ("layer_norm1", "ln_1"),
        ("layer_norm2", "ln_2"),
        (".mlp.fc1.", ".mlp.c_fc."),
        (".mlp.fc2.", ".mlp.c_proj."),
        (".self_attn.", ".attn."),
    )
    fixed = {
        "text_model.embeddings.position_embedding.weight": "positional_embedding",
        "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
        "text_model.final_layer_norm.weight": "ln_final.weight",
        "text_model.final_layer_norm.bias": "ln_final.bias",
    }
    weights = _clip_weights(model)
    out, qkv = {}, {}
    for key, value in weights.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()
        elif key in fixed:
            out[fixed[key]] = value
        elif m := re.fullmatch(r"(.+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            qkv.setdefault((m[1], m[3]), {})[m[2]] = value
        else:
            out[_replace_all(key, renames)] = value
    for (layer, kind), parts in qkv.items():
        fused = torch.cat([parts["q"], parts["k"], parts["v"]])
        out[_replace_all(f"{layer}.self_attn.in_proj_{kind}", renames)] = fused
    return out


def save_single_file(pipeline_dir, path) -> Path:
    """Write the SD 1.x or SDXL pipeline saved in ``pipeline_dir`` to ``path`` (a .safetensors
    file) in the original single-file layout; return the path."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    pipeline_dir, path = Path(pipeline_dir), Path(path)
    unet = UNet2DConditionModel.from_pretrained(pipeline_dir / "unet")
    vae = AutoencoderKL.from_pretrained(pipeline_dir / "vae")
    state = {
        f"model.diffusion_model.{_unet_key(k, unet.config)}": v
        for k, v in unet.state_dict().items()
    }
    state |= {
        f"first_stage_model.{_vae_key(k, vae.config)}": v for k, v in vae.state_dict().items()
    }
    text = CLIPTextModel.from_pretrained(pipeline_dir / "text_encoder")
    if (pipeline_dir / "text_encoder_2").is_dir():  # SDXL
        text_2 = CLIPTextModelWithProjection.from_pretrained(pipeline_dir / "text_encoder_2")
        state |= {
            f"conditioner.embedders.0.transformer.{k}": v for k, v in _clip_weights(text).items()
        }
        state |= {
            f"conditioner.embedders.1.model.{k}": v for k, v in _open_clip_weights(text_2).items()
        }
    else:
        state |= {f"cond_stage_model.transformer.{k}": v for k, v in _clip_weights(text).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    return path
