"""Tiny random Stable Diffusion 1.x pipelines for tests: no Hub, built in-process, saved to disk.

Tests load them through the same ``from_pretrained`` path users take, so the folder layout is the
real diffusers one (model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/, ...).
Weights are random but seeded, so every call writes the same folder.
"""

import json
import tempfile
from pathlib import Path

import torch

SEED = 0
IMAGE_SIZE = 64  # pixels; the tiny VAE halves it, so latents are 32x32
# Words that the tiny tokenizer keeps as one token, the way CLIP's BPE does for common English
# words; every other word falls apart into single bytes, so the tiny tokenizer never counts fewer
# tokens than the real CLIP tokenizer on the same text.
WHOLE_WORDS = (
    "cover",
    "album",
    "of",
    "song",
    "by",
    "in",
    "with",
    "the",
    "music",
    "tags",
    "rock",
    "pop",
)


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to unused
    # code points, so every byte string is representable with 256 visible characters.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


def _write_tokenizer_files(folder: Path) -> None:
    """vocab.json + merges.txt: every byte alone and as a word end, plus a few whole words."""
    alphabet = list(_bytes_to_unicode().values())
    vocab: list[str] = alphabet + [c + "</w>" for c in alphabet]
    merges: list[str] = []
    for word in WHOLE_WORDS:
        # merge left to right: "c o" -> "co", "co v" -> "cov", ..., "cove r</w>" -> "cover</w>"
        for i in range(1, len(word)):
            left = word[:i]
            right = word[i] + ("</w>" if i == len(word) - 1 else "")
            merged = left + right
            if merged not in vocab:
                merges.append(f"{left} {right}")
                vocab.append(merged)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def tiny_tokenizer():
    """The tiny CLIP tokenizer (77 tokens; bytes plus ``WHOLE_WORDS``), written and loaded back."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        _write_tokenizer_files(Path(tmp))
        return CLIPTokenizer.from_pretrained(tmp, model_max_length=77)


def _tiny_components(safety_checker: bool) -> dict:
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        sample_size=IMAGE_SIZE,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    # Stable Diffusion 1.5's own scheduler settings
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    components = dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if safety_checker:
        from diffusers.pipelines.stable_diffusion.safety_checker import (
            StableDiffusionSafetyChecker,
        )
        from transformers import CLIPConfig, CLIPImageProcessor

        config = CLIPConfig(
            text_config=dict(
                hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=1
            ),
            vision_config=dict(
                hidden_size=32,
                intermediate_size=37,
                num_attention_heads=4,
                num_hidden_layers=1,
                image_size=32,
                patch_size=8,
            ),
            projection_dim=16,
        )
        components["safety_checker"] = StableDiffusionSafetyChecker(config)
        components["feature_extractor"] = CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
        components["requires_safety_checker"] = True
    return components


def save_tiny_sd(path, safety_checker: bool = False) -> Path:
    """Write a tiny random SD 1.x pipeline to ``path`` (created) and return it as a Path.

    64x64 images (32x32 latents), 77-token CLIP tokenizer over bytes plus ``WHOLE_WORDS``; with
    ``safety_checker`` also a tiny random safety checker and its CLIP feature extractor. The global
    torch RNG is left untouched.
    """
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        pipe = StableDiffusionPipeline(**_tiny_components(safety_checker))
    pipe.save_pretrained(path)
    return path


def save_tiny_lora(base_dir, path) -> Path:
    """Write LoRA weights (rank 4, attention projections of the UNet) for the tiny pipeline in
    ``base_dir`` to ``path`` in the diffusers format ``pipe.load_lora_weights(path)`` reads.

    Both LoRA matrices are random (not the usual zero-initialised B), so loading them changes
    the images.
    """
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    path = Path(path)
    unet = UNet2DConditionModel.from_pretrained(Path(base_dir) / "unet")
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,  # random A and B: a no-op LoRA would prove nothing in tests
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED + 1)
        unet.add_adapter(config)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(path, unet_lora_layers=layers)
    return path
