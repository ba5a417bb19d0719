"""Shared pieces of the fine-tuning tests: tiny image folders, a captioned imagefolder, an
accelerate reset fixture and a render check through the app's CoverGenerator."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

PROMPT = "cover album of rock song, titled Night, by Ana, with the following music tags guitar"
CATEGORIES = ("rock", "jazz")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """accelerate keeps process-wide singletons; each in-process run must start like a new
    process (import this fixture into a test module to use it there)."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def write_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` random-colour PNGs of mixed sizes (so resizing and cropping run); their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        h, w = (40, 48) if i % 2 else (36, 36)
        pixels = rng.integers(0, 256, size=3) * np.ones((h, w, 3)) + rng.integers(0, 30, (h, w, 3))
        names.append(f"cover-{i}.png")
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(folder / names[-1])
    return names


def write_dataset(root: Path, n: int = 4) -> Path:
    """The imagefolder layout train.build_dataset writes: root/{train,validation}/; row i has
    the caption ``f"{PROMPT} {i}"`` and category ``CATEGORIES[i % 2]``."""
    for split, count in (("train", n), ("validation", 2)):
        names = write_images(root / split, count, seed=len(split))
        with open(root / split / "metadata.jsonl", "w") as f:
            for i, name in enumerate(names):
                row = {
                    "file_name": name,
                    "text": f"{PROMPT} {i}",
                    "title": f"Song {i}",
                    "artist": "Ana",
                    "category": CATEGORIES[i % 2],
                    "tags": ["guitar"],
                }
                f.write(json.dumps(row) + "\n")
    return root


def render(generator, prompt: str = PROMPT) -> Image.Image:
    """One 64 px cover through ``generator.generate`` (2 steps, seed 0), checked not blank."""
    from albumcover.paint.generator import GenerationSettings

    settings = GenerationSettings(steps=2, width=64, height=64, seed=0, negative_prompt="")
    (cover,) = generator.generate(prompt, settings)
    assert cover.image.size == (64, 64)
    assert np.asarray(cover.image).std() > 0  # a painted image, not a blank one
    return cover.image
