"""One cover per album: picked from its tracks, checked to decode, and rendered as the square PNG
the dataset stores."""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from albumcover.images import read_image

from .summary import BAD_COVER, NO_COVER, SPLITS, TINY_COVER, BuildSummary, Skipped
from .tracks import Track

MIN_COVER_PX = 64  # pixels on the short side: smaller is a thumbnail, not a cover to learn from


def _assign_covers(
    tracks: list[Track],
    output_dir: Path,
    resolution: int,
    summary: BuildSummary,
    min_cover_px: int = MIN_COVER_PX,
) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """Pick one cover per album and check it decodes; returns source -> (cover id, bytes getter).

    The album's cover is its first track's (by path) that has one, so tracks without their own
    cover borrow it. The cover id hashes the image bytes and the resolution, so one image file
    serves every album with that cover, and a rebuild at another size never reuses old files.
    A cover under ``min_cover_px`` on its short side is skipped (:data:`TINY_COVER`); with a
    lower ``min_cover_px`` it is taken, and still noted in the summary when under
    :data:`MIN_COVER_PX`.
    """
    albums: dict[tuple, list[Track]] = defaultdict(list)
    for track in tracks:
        albums[track.album_key].append(track)
    assigned = {}
    for members in albums.values():
        first = next((t for t in members if t.cover is not None), None)
        if first is None:
            for t in members:
                detail = "no embedded picture and no cover/folder/front image beside it"
                if t.tag_error:  # likely no audio at all: say so
                    detail += f"; {t.tag_error}"
                summary.skipped.append(Skipped(t.source, NO_COVER, detail))
            continue
        where = "embedded picture" if first.cover_embedded else str(first.cover)
        try:
            data = first.read_cover()
            cover_id = hashlib.sha256(f"{resolution}:".encode() + data).hexdigest()[:16]
            if not any((output_dir / s / f"{cover_id}.png").exists() for s in SPLITS):
                decode_cover(data, where)  # decodes it fully: a broken image fails here
            width, height = _header_size(data)
        except (OSError, ValueError) as e:
            for t in members:
                summary.skipped.append(Skipped(t.source, BAD_COVER, str(e)))
            continue
        if min(width, height) < MIN_COVER_PX:
            detail = f"{where}: {width} x {height} pixels, under {MIN_COVER_PX} px"
            if min(width, height) < min_cover_px:
                for t in members:
                    summary.skipped.append(Skipped(t.source, TINY_COVER, detail))
                continue
            summary.cover_notes += [(t.source, f"{detail}, taken as asked") for t in members]
        for t in members:
            assigned[t.source] = (cover_id, first.read_cover)
    return assigned


def _header_size(data: bytes) -> tuple[int, int]:
    """(width, height) as the image's header declares them (nothing decoded)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def decode_cover(data: bytes, name: str = "cover") -> Image.Image:
    """The cover's pixels through the one decoder (:func:`albumcover.images.read_image`): 8-bit
    sRGB RGB, upright, transparency on white, within the pixel budget. Raises ImageError (a
    ValueError naming ``name``) when the bytes are no usable image."""
    return read_image(data, name=name)


def square_cover(data: bytes, resolution: int, name: str = "cover"):
    """Decode an image (:func:`decode_cover`), center-crop it to a square and resize it
    (Lanczos) to RGB (res, res). Raises ValueError when the bytes are no usable image."""
    image = decode_cover(data, name)
    return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)


def _png_renderer(covers, resolution: int) -> Callable[[str], bytes]:
    """cover id -> the PNG bytes the dataset stores for it (square, ``resolution`` px)."""
    readers = {cover_id: read for cover_id, read in covers.values()}

    def render(cover_id: str) -> bytes:
        image = square_cover(readers[cover_id](), resolution)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    return render
