"""A tiny random CLIP (model + tokenizer + image processor) saved with ``save_pretrained``, so
``train.evaluate`` loads it through the ``from_pretrained`` path openai/clip-vit-base-patch32 takes.
"""

from pathlib import Path

import torch

SEED = 0
IMAGE_SIZE = 32  # pixels the tiny vision tower sees (4x4 patches of 8)
PROJECTION_DIM = 16


def _byte_alphabet() -> list[str]:
    # The byte-level BPE alphabet: bytes that are printable keep their character, the others are
    # shifted to code points from 256 up, so every byte has one visible symbol.
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    symbols = {b: chr(b) for b in keep}
    shifted = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + shifted)
            shifted += 1
    return [symbols[b] for b in range(256)]


def tiny_tokenizer():
    """A CLIP tokenizer whose vocabulary is every byte, alone and as a word end (no merges)."""
    from transformers import CLIPTokenizer

    alphabet = _byte_alphabet()
    tokens = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)


def save_tiny_clip(path) -> Path:
    """Write a tiny random ``CLIPModel`` (16-d embeddings), its tokenizer and a PIL image processor
    (32 px) to ``path``; return it as a Path. Seeded: every call writes the same weights."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    path = Path(path)
    tokenizer = tiny_tokenizer()
    tower = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
    config = CLIPConfig(
        text_config=dict(
            tower,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(tower, image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=PROJECTION_DIM,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = CLIPModel(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    ).save_pretrained(path)
    return path
