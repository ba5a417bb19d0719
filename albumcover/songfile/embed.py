"""Embedding a front cover into a copy of a song file, every container mutagen writes; the audio
data is copied byte for byte and every other tag and picture kept.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from mutagen import MutagenError
from mutagen.flac import Picture
from mutagen.id3 import APIC, ID3
from mutagen.mp4 import MP4Cover
from PIL import Image, UnidentifiedImageError

from ..files import atomic_path
from ..images import MAX_PIXELS, ImageError, check_budget, check_png_complete, over_budget
from .id3frames import undecodable_frames
from .tags import _KINDS, FRONT_COVER, SUPPORTED, SongFileError, _open, read_front_cover

logger = logging.getLogger(__name__)

# FLAC stores a picture block's length in 24 bits; one limit for every container keeps a cover
# that fits one file from failing in another.
MAX_COVER_BYTES = 16_000_000
COVER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True)
class _Cover:
    data: bytes
    mime: str
    width: int
    height: int
    depth: int  # bits per pixel
    colors: int  # palette entries, 0 when not indexed


def _read_cover(cover: Path, max_pixels: int = MAX_PIXELS) -> _Cover:
    """The cover file's bytes and picture facts; SongFileError unless it is a readable
    JPEG or PNG of at most MAX_COVER_BYTES and ``max_pixels`` (checked before decoding)."""

    try:
        size = cover.stat().st_size
        if not cover.is_file():
            raise SongFileError(f"cover is not a file: {cover}")
        if size > MAX_COVER_BYTES:
            raise SongFileError(
                f"cover {cover} is {size} bytes; a cover may have at most {MAX_COVER_BYTES}"
            )
        data = cover.read_bytes()
    except OSError as e:
        raise SongFileError(f"cannot read cover {cover}: {e.strerror or e}") from e
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            if kind not in COVER_FORMATS:
                raise SongFileError(
                    f"cover {cover} is {kind or 'an unknown format'}, not JPEG or PNG"
                )
            width, height, mode = image.width, image.height, image.mode
            check_budget((width, height), max_pixels, f"cover {cover}")
            if kind == "PNG":  # PIL decodes a PNG cut short without a word
                try:
                    check_png_complete(data, "PNG")
                except ImageError as e:
                    raise SongFileError(
                        f"cover {cover} is not a readable JPEG or PNG image: {e}"
                    ) from e
            bands = len(image.getbands())
            if kind == "JPEG":
                # libjpeg's 1/8-scale decode still reads every entropy-coded byte (a truncated
                # file fails all the same) at half the CPU of a full decode of a 3000-px export
                image.draft(mode, (max(1, width // 8), max(1, height // 8)))
            image.load()  # a truncated or corrupt image fails here, not in a music player
            bits = 1 if mode == "1" else 16 if mode.startswith("I;16") else 8
            palette = (image.getpalette() or []) if mode == "P" else []
            return _Cover(
                data=data,
                mime=COVER_FORMATS[kind],
                width=width,
                height=height,
                depth=bands * bits if mode != "P" else 8,
                colors=len(palette) // 3,
            )
    except SongFileError:
        raise
    except ImageError as e:
        raise SongFileError(str(e)) from e
    except Image.DecompressionBombError as e:  # raised by Image.open itself
        raise SongFileError(str(over_budget(e, max_pixels, f"cover {cover}"))) from e
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
    ) as e:
        raise SongFileError(f"cover {cover} is not a readable JPEG or PNG image: {e}") from e


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _read_only(path: Path) -> bool:
    # The mode bits, not os.access: root may write anything, but a file its owner made
    # read-only is one they meant to keep as it is.
    mode = path.stat().st_mode
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)


def embed_cover(
    song: str | os.PathLike,
    cover: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_pixels: int = MAX_PIXELS,
) -> Path:
    """Write a copy of ``song`` at ``out`` with ``cover`` (a JPEG or PNG file) as its front cover.

    The audio data is copied byte for byte; every other tag and picture is kept; an existing
    front cover is replaced. ``out`` equal to ``song`` (the same file) tags it in place, still
    atomically: a copy beside it is tagged, then replaces it (keeping its permissions).
    Otherwise ``song`` is only read. ``out`` must keep an extension of the song's container.
    ``max_pixels``: the cover's pixel budget, read from its header before it is decoded (see
    :mod:`albumcover.images`).

    Returns:
        ``out`` as a Path.

    Raises:
        SongFileError: the song is missing, corrupt, not audio or of an unsupported container
            (supported: MP3, WAV, FLAC, Ogg Vorbis, Opus, M4A/AAC); the cover is not a readable
            JPEG/PNG; ``out`` is read-only, has another container's extension, or cannot be
            written. Nothing is left behind then: no temp file, ``song`` and ``out`` untouched.
    """
    song, cover, out = Path(song), Path(cover), Path(out)
    audio = _open(song)
    kind = type(audio).__name__
    if kind == "AAC":  # raw ADTS: no container, so nowhere to keep a picture
        raise SongFileError(
            f"cannot embed a cover into {song}: a raw AAC (ADTS) stream has no place for one; "
            f"put it in an M4A first (ffmpeg -i {song.name} -c copy {song.stem}.m4a)"
        )
    if kind not in _KINDS:
        raise SongFileError(
            f"cannot embed a cover into {song}: {kind} files are not supported ({SUPPORTED})"
        )
    name, extensions = _KINDS[kind]
    lost = undecodable_frames(song) if kind in ("MP3", "WAVE") else []
    if lost:  # mutagen would save the tag without them
        raise SongFileError(
            f"cannot embed a cover into {song} without losing its ID3 frame(s) "
            f"{', '.join(lost)}: their text is not valid in the encoding they declare "
            "(re-save the tags with a tagger first)"
        )
    picture = _read_cover(cover, max_pixels)
    in_place = _same_file(song, out)
    if not in_place:
        suffix = out.suffix.lower()
        if suffix not in extensions and suffix != song.suffix.lower():
            raise SongFileError(
                f"cannot write the {name} song {song} as {out}: "
                f"use the extension {' or '.join(extensions)}"
            )
        if out.is_dir():
            raise SongFileError(f"cannot write {out}: it is a folder")
    # in place through a symlink: tag the file it points at, not a new file over the link
    target = Path(os.path.realpath(song)) if in_place else out
    if target.exists() and _read_only(target):
        raise SongFileError(f"cannot write {target}: the file is read-only")

    try:
        with atomic_path(target) as tmp:
            shutil.copyfile(song, tmp)
            _write_picture(_open(tmp), picture, song)
            if read_front_cover(tmp) != picture.data:
                raise SongFileError(f"the cover written into {out} does not read back")
            if in_place:
                shutil.copymode(song, tmp)
    except SongFileError:
        raise
    except OSError as e:  # the reason, not the temp file's name
        raise SongFileError(f"cannot write the cover into {out}: {e.strerror or e}") from e
    except (MutagenError, ValueError) as e:  # name the file, whatever failed
        raise SongFileError(f"cannot write the cover into {out}: {e}") from e
    logger.info("wrote %s with the cover %s", out, cover)
    return out


def _write_picture(audio, picture: _Cover, song: Path) -> None:
    """Put ``picture`` into the mutagen object (front cover replaced) and save it."""

    kind = type(audio).__name__
    if kind in ("MP3", "WAVE"):
        if audio.tags is None:
            audio.add_tags()
        tags: ID3 = audio.tags
        version = tags.version[1] if tags.version[1] in (3, 4) else 4
        for key in [k for k, f in tags.items() if k.startswith("APIC") and f.type == FRONT_COVER]:
            del tags[key]
        # desc "" : the key is "APIC:", which no other picture of the file can hold now.
        tags.add(APIC(encoding=3, mime=picture.mime, type=FRONT_COVER, desc="", data=picture.data))
        audio.save(v2_version=version)  # an ID3v2.3 file stays v2.3 (players that need it)
        return
    if kind == "MP4":
        if audio.tags is None:
            audio.add_tags()
        fmt = MP4Cover.FORMAT_PNG if picture.mime == "image/png" else MP4Cover.FORMAT_JPEG
        # covr has no picture types: the first is the front cover, the rest are kept.
        audio.tags["covr"] = [MP4Cover(picture.data, imageformat=fmt)] + list(
            audio.tags.get("covr", [])[1:]
        )
        audio.save()
        return
    block = Picture()
    block.type = FRONT_COVER
    block.mime = picture.mime
    block.desc = ""
    block.width, block.height = picture.width, picture.height
    block.depth, block.colors = picture.depth, picture.colors
    block.data = picture.data
    if kind == "FLAC":
        kept = [p for p in audio.pictures if p.type != FRONT_COVER]
        audio.clear_pictures()
        for p in [block, *kept]:
            audio.add_picture(p)
        audio.save()
        return
    # Ogg Vorbis / Opus: base64 FLAC picture blocks in METADATA_BLOCK_PICTURE comments.
    if audio.tags is None:
        audio.add_tags()
    kept = []
    for encoded in audio.tags.get("metadata_block_picture", []):
        try:
            if Picture(base64.b64decode(encoded)).type == FRONT_COVER:
                continue
        except (binascii.Error, ValueError, MutagenError):
            pass  # a broken block is not ours to judge: keep it as it was
        kept.append(encoded)
    audio.tags["metadata_block_picture"] = [base64.b64encode(block.write()).decode("ascii"), *kept]
    for legacy in ("coverart", "coverartmime"):  # the pre-2010 unofficial front cover
        if legacy in audio.tags:
            logger.info("%s: replacing the legacy %s front cover", song, legacy.upper())
            del audio.tags[legacy]
    audio.save()
