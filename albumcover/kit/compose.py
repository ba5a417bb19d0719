"""Covers in, and the pictures the kit builds around them: a cover checked and brought to sRGB,
a blurred, darkened enlargement of it as a backdrop, a cover lettered at the size it is shown.

Pixels throughout; images are PIL RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter

from ..images import ImageError, read_image, to_srgb
from ..release.lettering import letter_cover
from .ffmpeg import KitError

MIN_COVER = 64  # pixels: smaller is a thumbnail (as the export says)
MAX_COVER = 6000  # pixels per side: Apple's ceiling; a larger file is refused before it is decoded
BACKDROP_DARKEN = 0.45  # the backdrop's brightness, so the cover and its lettering stand out
_BLUR_SIDE = 160  # the backdrop is blurred this small, then enlarged: the same look, ~100x cheaper


def check_cover_image(image) -> Image.Image:
    """``image`` as square 8-bit sRGB RGB, or :class:`KitError` naming what is wrong (not an
    image, not square, under :data:`MIN_COVER` or over :data:`MAX_COVER` pixels)."""
    if not isinstance(image, Image.Image):
        raise KitError(f"cover must be an image, got {type(image).__name__}")
    _check_size(*image.size)
    return to_srgb(image)


def _check_size(width: int, height: int) -> None:
    if width != height:
        raise KitError(
            f"the cover is {width}x{height} pixels; it must be square (crop it, or paint it "
            "with equal width and height)"
        )
    if width < MIN_COVER:
        raise KitError(f"the cover is {width}x{height} pixels; at least {MIN_COVER} needed")
    if width > MAX_COVER:
        raise KitError(
            f"the cover is {width}x{height} pixels; at most {MAX_COVER}x{MAX_COVER} (scale it "
            "down first)"
        )


def load_cover(path: str | os.PathLike) -> Image.Image:
    """Open a cover file as square sRGB RGB through the one image decoder
    (:func:`albumcover.images.read_image`: every image enters the same way), its size checked
    from the header before the pixels are decoded, so a huge file costs no memory.
    Raises :class:`KitError` naming the file."""
    path = Path(path)
    try:
        return check_cover_image(
            read_image(path, max_pixels=MAX_COVER**2, name=f"cover {path.name}")
        )
    except ImageError as e:
        raise KitError(str(e)) from e


def backdrop(cover: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A ``size`` (width, height) backdrop: ``cover`` enlarged to cover it, blurred and
    darkened to :data:`BACKDROP_DARKEN`."""
    width, height = size
    small = cover.resize((_BLUR_SIDE, _BLUR_SIDE), Image.Resampling.BOX)
    small = small.filter(ImageFilter.GaussianBlur(_BLUR_SIDE / 40))
    side = max(width, height)
    big = small.resize((side, side), Image.Resampling.BICUBIC)
    left, top = (side - width) // 2, (side - height) // 2
    big = big.crop((left, top, left + width, top + height))
    return ImageEnhance.Brightness(big).enhance(BACKDROP_DARKEN)


def lettered(cover: Image.Image, side: int, title: str, artist: str) -> Image.Image:
    """``cover`` at ``side`` x ``side`` with ``title`` and ``artist`` set by the lettering engine
    (unchanged when both are empty)."""
    image = cover.resize((side, side), Image.Resampling.LANCZOS) if cover.width != side else cover
    if not title and not artist:
        return image.copy()
    return letter_cover(image, title, artist).image


def letter_line(image: Image.Image, box: tuple[int, int, int, int], text: str) -> Image.Image:
    """``image`` with one centred ``text`` line lettered inside ``box`` (x0, y0, x1, y1)."""
    if not text:
        return image
    area = image.crop(box)
    out = image.copy()
    out.paste(letter_cover(area, text, "", layout="center").image, box[:2])
    return out
