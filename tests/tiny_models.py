"""Random Stable Diffusion 1.x pipelines built in-process and saved to disk, no Hub: tiny ones for
tests, and one with SD 1.5's full architecture for the benchmarks.

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


# Component configs, one table per size, so one builder (_components) makes both.
TINY = dict(
    unet=dict(
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
    ),
    vae=dict(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        sample_size=IMAGE_SIZE,
    ),
    text_encoder=dict(  # vocab_size: the tiny tokenizer's
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
    ),
    safety_checker=dict(
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
    ),
)
# The configs of stable-diffusion-v1-5: UNet 320/640/1280/1280 with 768-d cross-attention, the
# 12-layer CLIP ViT-L text encoder (its real 49408-token embedding), VAE 128/256/512/512 and the
# ViT-L/14 safety checker; ~1.07 B parameters without the checker.
FULL_SIZE = dict(
    unet=dict(
        sample_size=64,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ),
    vae=dict(
        sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
    ),
    text_encoder=dict(
        vocab_size=49408,
        hidden_size=768,
        intermediate_size=3072,
        num_attention_heads=12,
        num_hidden_layers=12,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=768,
    ),
    safety_checker=dict(
        vision_config=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=24,
            patch_size=14,
            image_size=224,
        ),
        projection_dim=768,
    ),
)


def _components(configs: dict, safety_checker: bool) -> dict:
    """StableDiffusionPipeline keyword arguments built from one of the config tables."""
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer()
    torch.manual_seed(SEED)
    unet = UNet2DConditionModel(**configs["unet"])
    vae = AutoencoderKL(**configs["vae"])
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            **{"vocab_size": len(tokenizer), **configs["text_encoder"]},
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

        config = CLIPConfig(**configs["safety_checker"])
        side = config.vision_config.image_size
        components["safety_checker"] = StableDiffusionSafetyChecker(config)
        components["feature_extractor"] = CLIPImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        )
        components["requires_safety_checker"] = True
    return components


def _save(path, configs: dict, safety_checker: bool, dtype=None) -> Path:
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        pipe = StableDiffusionPipeline(**_components(configs, safety_checker))
    if dtype is not None and dtype != torch.float32:  # halves the bytes written and read back
        pipe.to(dtype=dtype)
    pipe.save_pretrained(path)
    return path


def save_tiny_sd(path, safety_checker: bool = False) -> Path:
    """Write a tiny random SD 1.x pipeline to ``path`` (created) and return it as a Path.

    64x64 images (32x32 latents), 77-token CLIP tokenizer over bytes plus ``WHOLE_WORDS``; with
    ``safety_checker`` also a tiny random safety checker and its CLIP feature extractor. The global
    torch RNG is left untouched.
    """
    return _save(path, TINY, safety_checker)


def save_full_size_sd(path, safety_checker: bool = False, dtype=None) -> Path:
    """Write a pipeline with Stable Diffusion 1.5's architecture and random weights to ``path``.

    For benchmarks: the compute is the real model's (``FULL_SIZE``: 512x512 images, 64x64
    latents) but nothing is downloaded; the stand-in is the tiny tokenizer, which changes no
    compute because prompts are always padded to 77 tokens. Weights are cast to ``dtype``
    (a torch dtype; default float32) before saving. Needs ~4.5 GB of disk and memory in float32
    (~5.7 GB with the safety checker). The global torch RNG is left untouched.
    """
    return _save(path, FULL_SIZE, safety_checker, dtype)


def save_tiny_lora(base_dir, path, seed_offset: int = 1) -> Path:
    """Write LoRA weights (rank 4, attention projections of the UNet) for the tiny pipeline in
    ``base_dir`` to ``path`` in the diffusers format ``pipe.load_lora_weights(path)`` reads.

    Both LoRA matrices are random (not the usual zero-initialised B), so loading them changes
    the images; another ``seed_offset`` gives other random matrices. Works for the tiny SDXL
    too (the UNet's attention projections have the same names).
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
        torch.manual_seed(SEED + seed_offset)
        unet.add_adapter(config)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionPipeline.save_lora_weights(path, unet_lora_layers=layers)
    return path


# A tiny SDXL: two CLIP text encoders (the second with a projection, whose pooled output feeds the
# UNet's `text_time` conditioning with the six size/crop ids), cross-attention over both encoders'
# hidden states concatenated (32 + 40 = 72), SDXL's Euler scheduler and VAE scaling factor. The
# encoders differ in width as SDXL's do (768 and 1280): a single-file reader tells them apart so.
TINY_SDXL = dict(
    unet=dict(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # six time ids x 8 + pooled text (32)
        cross_attention_dim=32 + 40,
        norm_num_groups=32,
    ),
    vae=dict(**TINY["vae"], scaling_factor=0.13025),
    text_encoder=dict(
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=32,
    ),
    text_encoder_2=dict(hidden_size=40),  # the rest as text_encoder
)
# The configs of stable-diffusion-xl-base-1.0: UNet 320/640/1280 with 1/2/10 transformer layers
# and 2048-d cross-attention (768 CLIP ViT-L + 1280 OpenCLIP ViT-bigG), VAE 128/256/512/512;
# ~3.5 B parameters (UNet 2.6 B). For a GPU benchmark: ~7 GB in float16, ~14 GB in float32.
FULL_SIZE_SDXL = dict(
    unet=dict(
        sample_size=128,
        block_out_channels=(320, 640, 1280),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(5, 10, 20),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        transformer_layers_per_block=(1, 2, 10),
        projection_class_embeddings_input_dim=6 * 256 + 1280,
        cross_attention_dim=768 + 1280,
    ),
    vae={**FULL_SIZE["vae"], "sample_size": 1024, "scaling_factor": 0.13025},
    text_encoder=FULL_SIZE["text_encoder"],  # SDXL's first text encoder is SD 1.5's CLIP ViT-L
    text_encoder_2=dict(
        hidden_size=1280,
        intermediate_size=5120,
        num_attention_heads=20,
        num_hidden_layers=32,
        hidden_act="gelu",
        projection_dim=1280,
    ),
)


def _save_sdxl(path, configs: dict, dtype=None) -> Path:
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    path = Path(path)
    tokenizer = tiny_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        config = CLIPTextConfig(
            **{"vocab_size": len(tokenizer), **configs["text_encoder"]},
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        config_2 = CLIPTextConfig(**{**config.to_dict(), **configs["text_encoder_2"]})
        pipe = StableDiffusionXLPipeline(
            vae=AutoencoderKL(**configs["vae"]),
            text_encoder=CLIPTextModel(config),
            text_encoder_2=CLIPTextModelWithProjection(config_2),
            tokenizer=tokenizer,
            tokenizer_2=tiny_tokenizer(),
            unet=UNet2DConditionModel(**configs["unet"]),
            # SDXL base 1.0's scheduler settings
            scheduler=EulerDiscreteScheduler(
                beta_start=0.00085,
                beta_end=0.012,
                beta_schedule="scaled_linear",
                num_train_timesteps=1000,
                steps_offset=1,
                timestep_spacing="leading",
            ),
        )
    if dtype is not None and dtype != torch.float32:  # halves the bytes written and read back
        pipe.to(dtype=dtype)
    pipe.save_pretrained(path)
    return path


def save_tiny_sdxl(path) -> Path:
    """Write a tiny random SDXL pipeline (``StableDiffusionXLPipeline``) to ``path``; return it.

    64x64 images, two tiny CLIP tokenizers and text encoders (``text_encoder_2`` with a
    projection), ``text_time`` UNet conditioning. The global torch RNG is left untouched.
    """
    return _save_sdxl(path, TINY_SDXL)


def save_full_size_sdxl(path, dtype=None) -> Path:
    """Write a pipeline with SDXL base 1.0's architecture (``FULL_SIZE_SDXL``: 1024x1024 images,
    128x128 latents) and random weights to ``path``, cast to ``dtype`` (default float32). For
    GPU benchmarks; the stand-in tokenizers change no compute (prompts are padded to 77). Needs
    ~14 GB of memory to build in float32. The global torch RNG is left untouched."""
    return _save_sdxl(path, FULL_SIZE_SDXL, dtype)


def save_tiny_taesd(path) -> Path:
    """Write a tiny random ``AutoencoderTiny`` (the TAESD architecture: two blocks, so 32x32
    latents decode to 64x64 like the tiny VAEs') to ``path``; return it. The global torch RNG is
    left untouched."""
    from diffusers import AutoencoderTiny

    path = Path(path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        vae = AutoencoderTiny(
            encoder_block_out_channels=(16, 16),
            decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
        )
    vae.save_pretrained(path)
    return path
