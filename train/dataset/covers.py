"""One cover per album: picked from its tracks, checked to decode, and rendered as the square PNG
the dataset stores."""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .summary import BAD_COVER, NO_COVER, SPLITS, BuildSummary, Skipped
from .tracks import Track


def _assign_covers(
    tracks: list[Track], output_dir: Path, resolution: int, summary: BuildSummary
) -> dict[str, tuple[str, Callable[[], bytes]]]:
    """Pick one cover per album and check it decodes; returns source -> (cover id, bytes getter).

    The album's cover is its first track's (by path) that has one, so tracks without their own
    cover borrow it. The cover id hashes the image bytes and the resolution, so one image file
    serves every album with that cover, and a rebuild at another size never reuses old files.
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
        try:
            data = first.read_cover()
            cover_id = hashlib.sha256(f"{resolution}:".encode() + data).hexdigest()[:16]
            if not any((output_dir / s / f"{cover_id}.png").exists() for s in SPLITS):
                square_cover(data, 8)  # decodes it fully: a broken image fails here
        except (OSError, ValueError) as e:
            where = "embedded picture" if first.cover_embedded else str(first.cover)
            for t in members:
                summary.skipped.append(Skipped(t.source, BAD_COVER, f"{where}: {e}"))
            continue
        for t in members:
            assigned[t.source] = (cover_id, first.read_cover)
    return assigned


def square_cover(data: bytes, resolution: int):
    """Decode an image, center-crop it to a square and resize it (Lanczos) to RGB (res, res).

    Transparent pixels are painted on white. Raises ValueError when the bytes are no image.
    """

    try:
        with Image.open(io.BytesIO(data)) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P", "PA") and (
                "A" in image.mode or "transparency" in image.info
            ):
                rgba = image.convert("RGBA")
                image = Image.new("RGB", rgba.size, "white")
                image.paste(rgba, mask=rgba.getchannel("A"))
            image = image.convert("RGB")
            return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError, OSError) as e:
        raise ValueError(f"not a readable image ({e})") from e


def _png_renderer(covers, resolution: int) -> Callable[[str], bytes]:
    """cover id -> the PNG bytes the dataset stores for it (square, ``resolution`` px)."""
    readers = {cover_id: read for cover_id, read in covers.values()}

    def render(cover_id: str) -> bytes:
        image = square_cover(readers[cover_id](), resolution)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    return render
