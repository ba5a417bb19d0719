"""The one way an image enters albumcover: every picture a person or a song hands us (the app's
cover upload, ``albumcover cover --image``, a cover embedded in a song, a dataset cover, a shard
being merged) is opened by :func:`read_image`, so the same file gives the same pixels everywhere.

What it does, in order:

* **a pixel budget, from the header**: ``Image.open`` reads only the header, so a file that
  declares more than ``max_pixels`` (default :data:`MAX_PIXELS`, 36 megapixels: 6000 x 6000,
  the largest cover any store takes) is refused before a byte of it is decoded. PIL's own
  decompression-bomb limit is turned into the same message;
* **only raster formats** (:data:`FORMATS`): PIL's EPS/PDF-style plugins, which run other
  programs, are never reached;
* **one conversion** (:func:`to_srgb`) to 8-bit sRGB RGB: EXIF orientation applied; 16-bit and
  32-bit greyscale scaled to 8 bits (not clipped); palette expanded; CMYK and any embedded ICC
  profile converted to sRGB (LittleCMS, perceptual intent); transparency flattened onto
  :data:`BACKGROUND` (white, as on a printed sleeve) the same way in every caller.

Failures are :class:`ImageError` (a ValueError) whose message names the file and, for the
budget, the budget.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

log = logging.getLogger(__name__)

MAX_PIXELS = 6000 * 6000  # width x height; the default budget (Apple's largest cover)
BACKGROUND = (255, 255, 255)  # transparent pixels are flattened onto white, everywhere
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# What PIL raises for a broken or hostile file (its plugins differ in which they use).
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    Image.DecompressionBombError,
)
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(ValueError):
    """An image that cannot be taken in; the message names the file and the reason."""


def describe_budget(max_pixels: int) -> str:
    """The budget in words: "36 megapixels (e.g. 6000 x 6000)"."""
    side = int(max_pixels**0.5)
    return f"{max_pixels / 1e6:g} megapixels (e.g. {side} x {side})"


def check_budget(size: tuple[int, int], max_pixels: int, name: str) -> None:
    """Refuse a ``(width, height)`` over ``max_pixels`` (read from the header, before decoding)."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the image declares {width} x {height} pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"{name} is {width} x {height} pixels ({width * height / 1e6:.1f} megapixels), over "
            f"the budget of {describe_budget(max_pixels)}; scale it down first"
        )


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel


def _png_row_bytes(width: int, height: int, bits: int) -> int:
    """Filtered bytes of a non-interlaced image: each row's filter byte and its samples."""
    return 0 if width == 0 or height == 0 else height * (1 + (width * bits + 7) // 8)


def check_png_complete(data: bytes, name: str) -> None:
    """Refuse a PNG that is not whole, which PIL decodes without a word: a chunk whose CRC is
    wrong, no IEND (the file was cut), or image data that ends before the last row (PIL leaves
    the missing rows black). The image data is inflated once, counted and thrown away, in
    1 MB steps (memory stays flat whatever the size)."""
    if not data.startswith(_PNG_SIGNATURE):
        return
    position, idat, expected, ended = len(_PNG_SIGNATURE), zlib.decompressobj(), None, False
    produced = 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        crc = data[position + 8 + length : position + 12 + length]
        if len(body) < length or len(crc) < 4:
            break
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ImageError(f"{name}: not a readable image (the PNG's {kind!r} chunk is corrupt)")
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body[:13])
            bits = depth * _PNG_CHANNELS.get(colour, 1)
            if interlace:  # Adam7: seven reduced images, each with its own rows
                passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                          (1, 0, 2, 2), (0, 1, 1, 2))  # fmt: skip
                expected = sum(
                    _png_row_bytes((width - x + dx - 1) // dx, (height - y + dy - 1) // dy, bits)
                    for x, y, dx, dy in passes
                )
            else:
                expected = _png_row_bytes(width, height, bits)
        elif kind == b"IDAT":
            chunk = body
            while chunk and not idat.eof:
                produced += len(idat.decompress(chunk, 1 << 20))
                chunk = idat.unconsumed_tail
        elif kind == b"IEND":
            ended = True
            break
        position += 12 + length
    if not ended:
        raise ImageError(f"{name}: not a readable image (the PNG ends early: truncated)")
    if expected is not None and produced < expected:
        raise ImageError(
            f"{name}: not a readable image (its pixel data ends at {produced:,} of "
            f"{expected:,} bytes: truncated)"
        )


def over_budget(error: Image.DecompressionBombError, max_pixels: int, name: str) -> ImageError:
    """PIL's decompression-bomb refusal (raised by ``Image.open`` itself for more than twice
    ``Image.MAX_IMAGE_PIXELS``, before our header check) said as the budget's message."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    declared = f"{int(found.group(1)) / 1e6:.1f} megapixels" if found else "too many pixels"
    return ImageError(
        f"{name} declares {declared}, over the budget of {describe_budget(max_pixels)}; "
        "scale it down first"
    )


def read_image(
    source: str | os.PathLike | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    name: str | None = None,
) -> Image.Image:
    """Decode an image file (a path, or its bytes) to 8-bit sRGB RGB, within a pixel budget.

    ``max_pixels``: width x height allowed, checked from the header before decoding.
    ``name``: how messages call the file (default: the path, or "image" for bytes).
    Returns a loaded ``RGB`` image of the file's upright size (EXIF orientation applied).

    Raises:
        ImageError: unreadable, not a raster format of :data:`FORMATS`, over the budget, or
            truncated/corrupt; the message names the file.
    """
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool) or max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive whole number; got {max_pixels!r}")
    if isinstance(source, bytes | bytearray):
        name = name or "image"
    else:
        name = name or str(source)
    try:
        data = bytes(source) if isinstance(source, bytes | bytearray) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            check_budget(image.size, max_pixels, name)
            if image.format == "PNG":
                check_png_complete(data, name)
            image.load()  # a truncated or corrupt image fails here
            return to_srgb(image)
    except ImageError:
        raise
    except FileNotFoundError as e:
        raise ImageError(f"{name}: no such file") from e
    except PermissionError as e:
        raise ImageError(f"{name}: cannot be read (permission denied)") from e
    except IsADirectoryError as e:
        raise ImageError(f"{name}: is a folder, not an image file") from e
    except Image.UnidentifiedImageError as e:
        raise ImageError(
            f"{name}: not a readable image (not one of the formats taken: {', '.join(FORMATS)})"
        ) from e
    except Image.DecompressionBombError as e:  # PIL's own limit, checked inside Image.open
        raise over_budget(e, max_pixels, name) from e
    except MemoryError as e:
        raise ImageError(f"{name}: too large to decode here") from e
    except _DECODE_ERRORS as e:
        raise ImageError(f"{name}: not a readable image ({e or type(e).__name__})") from e


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (LittleCMS's built-in one)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale (I;16, I, F) as 8-bit L, scaled to the range they use."""
    if image.mode == "F":
        low, high = image.getextrema()
        scale = 255.0 if high <= 1.0 else 1.0 if high <= 255 else 255.0 / 65535.0
        return image.point(lambda v: v * scale).convert("L")
    image = image.convert("I")
    _, high = image.getextrema()
    if high > 255:  # 16-bit samples (a 16-bit PNG or TIFF); an 8-bit range passes unscaled
        image = image.point(lambda v: v / 257)
    return image.convert("L")


def _from_profile(image: Image.Image, icc: bytes | None) -> Image.Image:
    """``image`` (L, RGB or CMYK) converted from its ICC profile to sRGB RGB (perceptual)."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "srgb" not in (ImageCms.getProfileDescription(source) or "").lower():
                target = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
                return ImageCms.profileToProfile(image, source, target, 0, "RGB")
        except (OSError, ImageCms.PyCMSError) as e:  # a broken or mismatched profile
            log.warning("ignoring an unreadable ICC profile: %s", e)
    return image.convert("RGB")


def to_srgb(image: Image.Image) -> Image.Image:
    """An open image as 8-bit RGB in sRGB (a new image; ``image`` is not changed).

    EXIF orientation applied; 16/32-bit greyscale scaled to 8 bits; palette expanded; an
    embedded ICC profile (or CMYK) converted to sRGB; transparency flattened onto
    :data:`BACKGROUND`. Raises ValueError for a mode PIL cannot convert (LAB, HSV).
    """
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    alpha = None
    if image.mode in ("P", "PA", "1"):
        has_alpha = image.mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif "transparency" in image.info and image.mode in ("L", "RGB"):
        image = image.convert("LA" if image.mode == "L" else "RGBA")
    if image.mode in _ALPHA_MODES:
        alpha = image.getchannel(image.mode[-1])
        image = image.convert("L" if image.mode in ("LA", "La") else "RGB")
    if image.mode in _DEEP_MODES:
        image = _to_8bit(image)
    if image.mode not in ("L", "RGB", "CMYK"):
        try:
            image = image.convert("RGB")
        except ValueError as e:
            raise ValueError(f"the colour mode {image.mode} cannot be converted to RGB") from e
    rgb = _from_profile(image, icc)
    if alpha is not None:
        flat = Image.new("RGB", rgb.size, BACKGROUND)
        flat.paste(rgb, mask=alpha)
        rgb = flat
    return rgb
