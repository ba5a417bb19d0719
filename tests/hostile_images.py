"""Image files that decode differently depending on who decodes them: 16-bit, palette with
transparency, alpha, CMYK, a non-sRGB ICC profile, EXIF orientation; and files that lie (a
header declaring 30000 x 30000 pixels, a truncated PNG). Written with PIL and numpy; the ICC
profile is built byte by byte (a matrix/TRC RGB profile whose red and green primaries are
sRGB's green and red), so converting it is unmistakable: its pure red is sRGB's pure green."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

# sRGB's primaries adapted to D50 (the ICC connection space), and D50 itself
_SRGB_D50 = {
    "r": (0.4361, 0.2225, 0.0139),
    "g": (0.3851, 0.7169, 0.0971),
    "b": (0.1431, 0.0606, 0.7141),
}
_D50 = (0.9642, 1.0, 0.8249)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(values) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_))
        + ascii_
        + b"\0" * 8  # no Unicode description
        + b"\0" * 3
        + b"\0" * 67  # no ScriptCode description
    )


def swapped_primaries_profile() -> bytes:
    """An ICC v2 RGB display profile, "Swapped RG", whose red primary is sRGB's green and whose
    green is sRGB's red (gamma 2.2 curves)."""
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(2.2 * 256)) + b"\0\0"
    tags = [
        (b"desc", _desc("Swapped RG")),
        (b"wtpt", _xyz(_D50)),
        (b"rXYZ", _xyz(_SRGB_D50["g"])),
        (b"gXYZ", _xyz(_SRGB_D50["r"])),
        (b"bXYZ", _xyz(_SRGB_D50["b"])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\0\0\0\0" + b"none\0" + b"\0" * 3),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"APPL"
        + b"\0" * 4
        + b"none"
        + b"none"
        + b"\0" * 8
        + struct.pack(">I", 0)
        + b"".join(_s15(v) for v in _D50)
        + b"lcms"
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def gradient(size: int) -> np.ndarray:
    """A (size, size) float gradient in [0, 1], left to right and top to bottom."""
    x = np.linspace(0.0, 1.0, size)
    return (x[None, :] * 0.7 + x[:, None] * 0.3).astype(np.float64)


def sixteen_bit_gray(path: Path, size: int = 640) -> Path:
    """A 16-bit greyscale PNG (mode I;16): a gradient over the whole 0..65535 range."""
    Image.fromarray((gradient(size) * 65535).round().astype(np.uint16)).save(path)
    return path


def transparent(path: Path, size: int = 640) -> Path:
    """An RGBA PNG: opaque blue on the left half, fully transparent (red underneath) right."""
    pixels = np.zeros((size, size, 4), np.uint8)
    pixels[:, :, 2] = 255
    pixels[:, : size // 2, 3] = 255
    pixels[:, size // 2 :, 0] = 255  # colour under alpha 0: must not show
    Image.fromarray(pixels, "RGBA").save(path)
    return path


def palette_with_transparency(path: Path, size: int = 640) -> Path:
    """A palette PNG whose index 0 is transparent (tRNS), left half index 1 (green)."""
    image = Image.new("P", (size, size), 0)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * (254 * 3))
    image.paste(1, (0, 0, size // 2, size))
    image.save(path, transparency=0)
    return path


def cmyk_jpeg(path: Path, size: int = 640) -> Path:
    """A CMYK JPEG: full cyan on the top half, white below."""
    image = Image.new("CMYK", (size, size), (0, 0, 0, 0))
    image.paste((255, 0, 0, 0), (0, 0, size, size // 2))
    image.save(path, "JPEG", quality=95)
    return path


def tagged_with_profile(path: Path, size: int = 640) -> Path:
    """An RGB PNG of pure red tagged with :func:`swapped_primaries_profile`: sRGB green."""
    Image.new("RGB", (size, size), (255, 0, 0)).save(path, icc_profile=swapped_primaries_profile())
    return path


def exif_rotated(path: Path, size: int = 640) -> Path:
    """A JPEG stored sideways with EXIF orientation 6: a red block top-left as stored, shown
    top-right once turned."""
    stored = Image.new("RGB", (size, size), "black")
    stored.paste((255, 0, 0), (0, 0, size // 4, size // 4))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", exif=exif, quality=100)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header declares ``width`` x ``height`` 8-bit RGB pixels, followed by
    the first rows' worth of compressed zeros: a decompression bomb if anyone decodes it."""
    rows = zlib.compress(b"\0" * min(width * 3 + 1, 1 << 20) * 64, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")
    )
    return path


def truncated_png(path: Path, size: int = 640) -> Path:
    """A noisy PNG cut to half its bytes."""
    noise = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


# (name, writer): every kind of file whose pixels depend on the decoder
TRICKY = {
    "16-bit grey": sixteen_bit_gray,
    "alpha": transparent,
    "palette + tRNS": palette_with_transparency,
    "CMYK": cmyk_jpeg,
    "ICC profile": tagged_with_profile,
    "EXIF orientation": exif_rotated,
}
SUFFIX = {"CMYK": ".jpg", "EXIF orientation": ".jpg"}


def write_tricky(folder: Path, size: int = 640) -> dict[str, Path]:
    """Every :data:`TRICKY` file in ``folder``; name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        name: write(folder / f"{name.replace(' ', '-')}{SUFFIX.get(name, '.png')}", size)
        for name, write in TRICKY.items()
    }
