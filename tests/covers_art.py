"""Test pictures for lettering and export: flat light, flat dark, busy noise, and a real
photograph (matplotlib's sample of Grace Hopper, cropped square)."""

from pathlib import Path

import numpy as np
from PIL import Image


def photo(size: int = 1024) -> Image.Image:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        side = min(image.size)
        square = image.convert("RGB").crop((0, 0, side, side))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def art(kind: str, size: int = 1024) -> Image.Image:
    """A square RGB test image: "light", "dark", "busy", "photo" or "mid" (mid-grey)."""
    if kind == "photo":
        return photo(size)
    if kind == "busy":  # every pixel random: no colour can read on it without help
        rng = np.random.default_rng(0)
        return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    colour = {"light": (238, 232, 220), "dark": (18, 20, 32), "mid": (119, 119, 119)}[kind]
    return Image.new("RGB", (size, size), colour)


def half_busy(size: int = 1024) -> Image.Image:
    """The top half random noise, the bottom half flat: the calm region is the bottom."""
    rng = np.random.default_rng(1)
    pixels = np.full((size, size, 3), 40, np.uint8)
    pixels[: size // 2] = rng.integers(0, 256, (size // 2, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)
