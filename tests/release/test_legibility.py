"""Lettering reads on any art: tesseract (the Debian package ``tesseract-ocr``, run as a
process) reads the title and the artist back from covers lettered on light, dark, photographic,
busy and noise-like art, at the preview's and the export's size, in several layouts; on busy art
the text gets a blurred band, its contrast measured on the band as drawn."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from albumcover.release.contrast import MIN_CONTRAST, contrast_ratio, sample
from albumcover.release.lettering import letter_cover
from tests.covers_art import art

TITLE, ARTIST = "Night Drive", "Ana Lucia Fernandez"


def noise(size: int, block: int, seed: int = 2, low: int = 0, high: int = 256, grey=False):
    """Random blocks of ``block`` px (colour, or grey) with values in [low, high): per-pixel
    static to confetti as big as letters, or a soft film grain."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(low, high, (size // block, size // block, 1 if grey else 3), np.uint8)
    cells = np.repeat(cells, 3, axis=2) if grey else cells
    return Image.fromarray(cells).resize((size, size), Image.Resampling.NEAREST)


ARTS = {
    "light": lambda size: art("light", size),
    "dark": lambda size: art("dark", size),
    "photo": lambda size: art("photo", size),
    "static": lambda size: noise(size, 1),
    "noise-like": lambda size: noise(size, 8),
    "confetti": lambda size: noise(size, size // 40),
    # grey grain of moderate amplitude: calm enough for a plain band, which it shows through
    "grain": lambda size: noise(size, 6 * size // 1024, seed=1, low=60, high=200, grey=True),
}


def read_back(image: Image.Image, box, pad: int) -> str:
    """What tesseract reads in ``box`` (with ``pad`` px around it), as lowercase letters and
    digits; a line taller than 120 px is scaled down first, as it is seen at a viewing size."""
    tesseract = shutil.which("tesseract")
    assert tesseract, "install the Debian package tesseract-ocr (make setup does)"
    x0, y0, x1, y1 = box
    crop = image.crop((max(0, x0 - pad), max(0, y0 - pad), x1 + pad, y1 + pad))
    if y1 - y0 > 120:
        k = 120 / (y1 - y0)
        crop = crop.resize(
            (round(crop.width * k), round(crop.height * k)), Image.Resampling.LANCZOS
        )
    done = subprocess.run(
        [tesseract, "stdin", "stdout", "--psm", "6"],
        input=_png(crop),
        capture_output=True,
        check=True,
    )
    return re.sub(r"[^a-z0-9]", "", done.stdout.decode("utf-8", "replace").lower())


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


CASES = [(kind, 1024, layout) for kind in ARTS for layout in ("auto", "bottom", "corner", "split")]
CASES += [(kind, 3000, layout) for kind in ARTS for layout in ("auto", "corner")]


@pytest.mark.parametrize("kind, size, layout", CASES)
def test_title_and_artist_read_back(kind, size, layout):
    done = letter_cover(ARTS[kind](size), TITLE, ARTIST, layout=layout)
    pad = max(2, round(done.title_size * 0.2))  # within the band's margin, where there is one
    case = (kind, size, layout, done.backing)
    assert "nightdrive" in read_back(done.image, done.boxes["title"], pad), case
    assert "analuciafernandez" in read_back(done.image, done.boxes["artist"], pad), case
    assert done.contrast >= MIN_CONTRAST


@pytest.mark.parametrize("kind", ["static", "noise-like", "confetti", "grain"])
def test_busy_art_gets_a_blurred_band_measured_as_drawn(kind):
    done = letter_cover(ARTS[kind](1024), TITLE, ARTIST, layout="top")
    assert done.backing == "blurred band"
    # the band as drawn, sampled in the gap above the title's ink: calm and in contrast
    x0, y0, x1, _ = done.boxes["title"]
    band = sample(np.asarray(done.image), (x0, max(0, y0 - 8), x1, y0 - 1)).astype(float)
    assert band.std(axis=0).max() < 12  # what was noise is now a near-flat band
    assert contrast_ratio(np.asarray(done.color)[None], band).min() >= MIN_CONTRAST
    assert done.contrast >= MIN_CONTRAST


@pytest.mark.parametrize("kind", ["light", "dark", "photo"])
def test_calm_art_is_not_blurred(kind):
    assert letter_cover(ARTS[kind](1024), TITLE, ARTIST).backing != "blurred band"
