"""A tiny synthetic cover dataset in the imagefolder layout ``python -m train.build_dataset``
writes: random-colour PNGs plus metadata.jsonl rows with the contract's columns."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

CATEGORIES = ("rock", "pop", "jazz")
WORDS = ("dark", "bright", "guitar", "synth", "piano", "dreamy", "loud", "calm")


def write_cover_dataset(
    root, n_train: int = 8, n_validation: int = 4, size: int = 32, seed: int = 0
) -> Path:
    """Write ``root/{train,validation}/`` with ``size`` px covers; each cover's colour follows its
    category, so conditioned models have something to learn. Returns ``root`` as a Path."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_validation)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            category = CATEGORIES[i % len(CATEGORIES)]
            base = np.zeros(3)
            base[i % 3] = 200
            pixels = base + rng.integers(0, 55, size=(size, size, 3))
            name = f"{split}-{i:04d}.png"
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name)
            words = rng.choice(WORDS, size=3, replace=False)
            tags = [str(w) for w in words]
            rows.append(
                {
                    "file_name": name,
                    "text": f"album cover, {category} music, {' '.join(tags)}, song {i}",
                    "category": category,
                    "title": f"Song {i}",
                    "artist": f"Artist {i % 2}",
                    "album": "Synthetic",
                    "date": "2001",
                    "tags": tags,
                    "scores": {t: 0.5 for t in tags},
                    "source": f"audio/{split}-{i}.mp3",
                }
            )
        with open(folder / "metadata.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return root
