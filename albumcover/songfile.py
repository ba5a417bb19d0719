"""A song file's tags and cover: the one reader of song tags, the one writer of embedded covers.

Containers (all through mutagen; the audio itself is never decoded or re-encoded here):

========================  ===========================  ===================================
container                 text tags                    front cover
========================  ===========================  ===================================
MP3                       ID3v2                        ID3 ``APIC`` frame, type 3
WAV                       ID3v2 in an ``id3`` chunk    ID3 ``APIC`` frame, type 3
FLAC                      Vorbis comments              ``PICTURE`` metadata block, type 3
Ogg Vorbis, Opus          Vorbis comments              ``METADATA_BLOCK_PICTURE``, type 3
M4A / AAC in MP4          iTunes atoms                 first ``covr`` atom
========================  ===========================  ===================================

Tag text goes through :func:`albumcover.tagtext.clean_tag_text`: what it repairs or drops is
reported in :attr:`SongTags.notes`, so text never reaches a prompt or caption garbled.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_path
from .id3frames import undecodable_frames
from .riffinfo import INFO_FIELDS, read_riff_info
from .tagtext import clean_tag_text

logger = logging.getLogger(__name__)

FRONT_COVER = 3  # ID3 / FLAC picture type "Cover (front)"
# FLAC stores a picture block's length in 24 bits; one limit for every container keeps a cover
# that fits one file from failing in another.
MAX_COVER_BYTES = 16_000_000
COVER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}

# mutagen class name -> (what users call it, extensions a copy may carry)
_KINDS = {
    "MP3": ("MP3", (".mp3",)),
    "WAVE": ("WAV", (".wav", ".wave")),
    "FLAC": ("FLAC", (".flac",)),
    "OggVorbis": ("Ogg Vorbis", (".ogg", ".oga")),
    "OggOpus": ("Opus", (".opus", ".ogg")),
    "MP4": ("M4A/AAC", (".m4a", ".mp4", ".m4b", ".aac")),
}
SUPPORTED = ", ".join(name for name, _ in _KINDS.values())

# SongTags text field -> (ID3 frames, MP4 atoms, Vorbis comment names), first present wins.
_TEXT_KEYS = {
    "title": (("TIT2",), ("\xa9nam",), ("title",)),
    "artist": (("TPE1",), ("\xa9ART",), ("artist",)),
    "album": (("TALB",), ("\xa9alb",), ("album",)),
    "album_artist": (("TPE2",), ("aART",), ("albumartist", "album artist", "album_artist")),
    # the release date, else the original release date (TYER/TDAT of ID3v2.3 arrive as TDRC)
    "date": (("TDRC", "TDRL", "TDOR"), ("\xa9day",), ("date", "year", "originaldate")),
    "genre": (("TCON",), ("\xa9gen",), ("genre",)),
}


class SongFileError(ValueError):
    """A song or cover file that cannot be read or written; the message names it and why."""


@dataclass(frozen=True)
class SongTags:
    """The tags of one song file. Text is cleaned (one line, NFC) and ``""`` where absent;
    numbers are None where absent. ``notes``: one line per value repaired or dropped."""

    title: str = ""
    artist: str = ""
    album: str = ""
    album_artist: str = ""
    date: str = ""  # as the file has it: "2004", "2004-05-12", "2004-05-12T07:00:00Z", ...
    genre: str = ""  # several genres joined with "; "
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def year(self) -> int | None:
        """The release year of :attr:`date`, or None."""
        return year_of(self.date)


def year_of(date: str) -> int | None:
    """The year in a tag date ("2004", "2004-05-12", "12/05/2004", "20040512",
    "2004-05-12T07:00:00Z", "May 2004"), or None."""
    date = (date or "").strip()
    compact = re.fullmatch(r"(1[89]\d\d|20\d\d)(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])", date)
    if compact:
        return int(compact.group(1))
    match = re.search(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", date)
    return int(match.group(1)) if match else None


def match_category(genre: str) -> str:
    """Map a free-text genre tag onto one of :data:`albumcover.prompts.CATEGORIES`, or "".

    A category's own name wins ("Hip-Hop" -> "hip hop"), then a Musicnn genre name the prompt
    builder knows ("Techno" -> "electronic"), then a category named inside the tag, the one
    nearest the end, as English genre names put the head noun last ("Pop Rock" is rock).
    Tags holding several genres ("Jazz; Blues", "Rock/Pop") are tried part by part.
    """
    from .prompts import CATEGORIES, infer_category

    by_key = {"".join(_genre_words(c)): c for c in CATEGORIES}
    for part in re.split(r"[;,/|]+", genre or ""):
        words = _genre_words(part)
        if not words:
            continue
        if "".join(words) in by_key:
            return by_key["".join(words)]
        known = infer_category({part: 1.0})
        if known:
            return known
        # (end position, length) of every category named inside the tag; the last, longest wins.
        found = []
        for category in CATEGORIES:
            cat_words = _genre_words(category)
            for start in range(len(words) - len(cat_words) + 1):
                if cat_words and words[start : start + len(cat_words)] == cat_words:
                    found.append((start + len(cat_words), len(cat_words), category))
        if found:
            return max(found)[2]
    return ""


def _genre_words(text: str) -> list[str]:
    text = text.lower().replace("&", " and ").replace("'n'", " and ")
    # "hip-hop", "hip hop" and "hiphop" are one genre: split on anything but letters and digits.
    return [w for w in re.split(r"[^0-9a-z]+", text) if w]


def _open(path: Path):
    """The mutagen object of ``path``; SongFileError when it is missing or not audio."""
    import mutagen

    if not path.exists():
        raise SongFileError(f"song file not found: {path}")
    if not path.is_file():
        raise SongFileError(f"cannot read {path}: not a file")
    if path.stat().st_size == 0:
        raise SongFileError(f"cannot read {path}: the file is empty, not audio")
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as e:
        raise SongFileError(f"cannot read {path}: {e or type(e).__name__}") from e
    if audio is None:
        raise SongFileError(f"cannot read {path}: not a known audio format ({SUPPORTED})")
    return audio


def read_song_tags(path: str | os.PathLike) -> SongTags:
    """Read the text tags, track and disc numbers of a song file (any container mutagen knows).

    Raises:
        SongFileError: the file is missing, or mutagen cannot parse it (not audio, truncated).
    """
    path = Path(path)
    return _tags_of(_open(path), path)


def read_front_cover(path: str | os.PathLike) -> bytes | None:
    """The encoded image bytes of the embedded front cover (the first picture when none is
    typed front, as many taggers leave type 0), or None when the file holds no picture.

    Raises:
        SongFileError: as :func:`read_song_tags`.
    """
    path = Path(path)
    pictures = [(kind, data) for kind, data in _pictures_of(_open(path), path) if data]
    if not pictures:
        return None
    fronts = [data for kind, data in pictures if kind == FRONT_COVER]
    return fronts[0] if fronts else pictures[0][1]


def _values(tags, keys_by_kind) -> list[str]:
    """Every text value of the first of the keys the tags hold."""
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    id3_keys, mp4_keys, vorbis_keys = keys_by_kind
    if isinstance(tags, ID3):
        for key in id3_keys:
            if key in tags:
                frame = tags[key]
                # TCON resolves ID3v1 genre numbers ("(17)" -> "Rock")
                values = frame.genres if key == "TCON" else frame.text
                return [str(v) for v in values]
        return []
    keys = mp4_keys if isinstance(tags, MP4Tags) else vorbis_keys
    for key in keys:
        try:
            if key in tags:
                return [str(v) for v in tags[key]]
        except (KeyError, ValueError):  # APEv2 and friends refuse some key spellings
            continue
    return []


def _numbers(tags, field: str) -> tuple[int | None, int | None]:
    """(number, total) of the track or the disc."""
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if tags is None:
        return None, None
    if isinstance(tags, MP4Tags):
        pairs = tags.get("trkn" if field == "track" else "disk") or [(0, 0)]
        number, total = pairs[0]
        return number or None, total or None
    if isinstance(tags, ID3):
        texts = _values(tags, (("TRCK" if field == "track" else "TPOS",), (), ()))
        totals: list[str] = []
    else:
        texts = _values(tags, ((), (), (f"{field}number",)))
        totals = _values(tags, ((), (), (f"{field}total", f"total{field}s")))
    return _number_pair(texts[0] if texts else "", totals[0] if totals else "")


def _number_pair(text: str, total_text: str = "") -> tuple[int | None, int | None]:
    """(number, total) from "3", "03/12" (and a separate total field, if any); 0 is absent."""
    match = re.match(r"\s*(\d+)\s*(?:/\s*(\d+))?", text)
    number = int(match.group(1)) if match else None
    total = int(match.group(2)) if match and match.group(2) else None
    if total is None and total_text.strip().isdigit():
        total = int(total_text)
    return number or None, total or None


def _tags_of(audio, path: Path) -> SongTags:
    from mutagen.id3 import ID3

    tags = audio.tags
    # A WAV's RIFF INFO list, read where its ID3 chunk (if any) lacks a field.
    info = read_riff_info(path) if type(audio).__name__ == "WAVE" else {}
    if tags is None and not info:
        return SongTags()
    info_values = {field: info[key] for key, field in reversed(INFO_FIELDS.items()) if key in info}
    values, notes = {}, []
    lost = undecodable_frames(path) if isinstance(tags, ID3) else []
    for name, keys in _TEXT_KEYS.items():
        found = [v for v in _values(tags, keys) if v.strip()] if tags is not None else []
        # one genre per value in every container; other fields keep their first value
        raw = "; ".join(found) if name == "genre" else (found[0] if found else "")
        raw = raw or info_values.get(name, "")
        values[name], note = clean_tag_text(raw)
        frame = next((k for k in keys[0] if k in lost), None)
        if not raw and frame:
            note = f"dropped: its ID3 {frame} frame is not valid text in the encoding it declares"
        if note:
            notes.append(f"{name}: {note}")
            logger.info("%s: %s: %s", path, name, note)
    track = _numbers(tags, "track")
    if track == (None, None) and "track" in info_values:
        track = _number_pair(info_values["track"])
    disc = _numbers(tags, "disc")
    return SongTags(
        **values,
        track_number=track[0],
        track_total=track[1],
        disc_number=disc[0],
        disc_total=disc[1],
        notes=tuple(notes),
    )


def _pictures_of(audio, path: Path) -> list[tuple[int, bytes]]:
    """(picture type, image bytes) of every embedded picture, in file order."""
    from mutagen import MutagenError
    from mutagen.flac import Picture
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    tags = audio.tags
    pictures = [(p.type, p.data) for p in getattr(audio, "pictures", [])]  # FLAC blocks
    if isinstance(tags, ID3):
        pictures += [(p.type, p.data) for p in tags.getall("APIC")]
    elif isinstance(tags, MP4Tags):
        pictures += [(FRONT_COVER, bytes(c)) for c in tags.get("covr", [])]
    elif tags is not None and "metadata_block_picture" in tags:
        for encoded in tags["metadata_block_picture"]:
            try:
                picture = Picture(base64.b64decode(encoded))
            except (binascii.Error, ValueError, MutagenError) as e:
                logger.warning("ignoring a broken metadata_block_picture in %s: %s", path, e)
                continue
            pictures.append((picture.type, picture.data))
    return pictures


@dataclass(frozen=True)
class _Cover:
    data: bytes
    mime: str
    width: int
    height: int
    depth: int  # bits per pixel
    colors: int  # palette entries, 0 when not indexed


def _read_cover(cover: Path) -> _Cover:
    """The cover file's bytes and picture facts; SongFileError unless it is a readable
    JPEG or PNG of at most MAX_COVER_BYTES."""
    from PIL import Image, UnidentifiedImageError

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
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
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


def embed_cover(song: str | os.PathLike, cover: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write a copy of ``song`` at ``out`` with ``cover`` (a JPEG or PNG file) as its front cover.

    The audio data is copied byte for byte; every other tag and picture is kept; an existing
    front cover is replaced. ``out`` equal to ``song`` (the same file) tags it in place, still
    atomically: a copy beside it is tagged, then replaces it (keeping its permissions).
    Otherwise ``song`` is only read. ``out`` must keep an extension of the song's container.

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
    picture = _read_cover(cover)
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
    from mutagen import MutagenError

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
    from mutagen import MutagenError
    from mutagen.flac import Picture
    from mutagen.id3 import APIC, ID3
    from mutagen.mp4 import MP4Cover

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
