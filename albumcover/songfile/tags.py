"""A song file's tags and embedded cover, read: the one reader of song tags (the writer of
embedded covers is :mod:`albumcover.songfile.embed`).

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

Tag text goes through :func:`albumcover.songfile.tagtext.clean_tag_text`: what it repairs or
drops is reported in :attr:`SongTags.notes`, so text never reaches a prompt or caption garbled.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen import MutagenError
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

from ..prompts import CATEGORIES, infer_category
from .id3frames import undecodable_frames
from .riffinfo import INFO_FIELDS, read_riff_info
from .tagtext import clean_tag_text

logger = logging.getLogger(__name__)

FRONT_COVER = 3  # ID3 / FLAC picture type "Cover (front)"

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
