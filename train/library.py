"""Reading a music library: audio files, their tags and cover art, or a manifest that lists them.

Covers come from the file itself (ID3 ``APIC``, FLAC pictures, Vorbis/Opus
``metadata_block_picture``, MP4 ``covr``) or, failing that, from an image beside it
(``cover.*``, ``folder.*``, ``front.*``). Nothing here tags audio or writes files.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from albumcover.audio import AUDIO_EXTENSIONS

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
# Folder images, best first: the names players and taggers (foobar2000, MusicBrainz Picard) write.
FOLDER_COVER_NAMES = ("cover", "folder", "front")
FRONT_COVER = 3  # ID3 / FLAC picture type "Cover (front)"

MANIFEST_COLUMNS = ("audio", "image", "title", "artist", "date", "category")
MANIFEST_OPTIONAL = ("album", "license")


class LibraryError(ValueError):
    """A music file or manifest that cannot be read; the message names the file."""


class ManifestError(LibraryError):
    """A manifest that cannot be used at all (unreadable, unknown format, missing columns)."""


@dataclass(frozen=True)
class TrackTags:
    """The text tags of one audio file (empty strings where the file has none)."""

    title: str = ""
    artist: str = ""
    album: str = ""
    album_artist: str = ""
    date: str = ""
    genre: str = ""


@dataclass(frozen=True)
class ManifestRow:
    """One usable manifest row; paths are resolved against the manifest's folder."""

    line: int
    audio: Path
    image: Path
    title: str
    artist: str
    album: str
    date: str
    category: str
    license: str = ""


@dataclass(frozen=True)
class BadRow:
    """A manifest row that was left out, and why."""

    line: int
    reason: str


def find_audio_files(root: str | Path) -> list[Path]:
    """Every audio file under ``root`` (recursively, hidden folders skipped), sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise LibraryError(f"audio folder not found or not a folder: {root}")
    found = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
                found.append(Path(folder) / name)
    return sorted(found)


def read_track(path: str | Path) -> tuple[TrackTags, bytes | None]:
    """Read the text tags and the embedded front cover (encoded image bytes, or None) of a file.

    Raises:
        LibraryError: mutagen cannot parse the file (not audio, truncated, unknown format).
    """
    import mutagen

    path = Path(path)
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as e:
        raise LibraryError(f"cannot read tags of {path}: {e}") from e
    if audio is None:
        raise LibraryError(f"cannot read tags of {path}: not a known audio format")
    return _text_tags(audio), _embedded_cover(audio, path)


def find_folder_cover(folder: str | Path) -> Path | None:
    """The cover image stored beside the tracks: ``cover.*``, else ``folder.*``, else ``front.*``.

    Names and extensions are matched case-insensitively; None when there is none.
    """
    candidates = {}
    for entry in sorted(Path(folder).iterdir()):
        stem, ext = os.path.splitext(entry.name.lower())
        if stem in FOLDER_COVER_NAMES and ext in IMAGE_EXTENSIONS and entry.is_file():
            candidates.setdefault(
                (FOLDER_COVER_NAMES.index(stem), IMAGE_EXTENSIONS.index(ext)), entry
            )
    return candidates[min(candidates)] if candidates else None


def year_of(date: str) -> int | None:
    """The year in a tag date ("2004", "2004-05-12", "12/05/2004"), or None."""
    match = re.search(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)", date or "")
    return int(match.group(1)) if match else None


def match_category(genre: str) -> str:
    """Map a free-text genre tag onto one of :data:`albumcover.prompts.CATEGORIES`, or "".

    A category's own name wins ("Hip-Hop" -> "hip hop"), then a Musicnn genre name the prompt
    builder knows ("Techno" -> "electronic"), then a category named inside the tag, the one
    nearest the end, as English genre names put the head noun last ("Pop Rock" is rock).
    Tags holding several genres ("Jazz; Blues", "Rock/Pop") are tried part by part.
    """
    from albumcover.prompts import CATEGORIES, infer_category

    categories = CATEGORIES
    by_key = {_genre_key(c): c for c in categories}
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
        for category in categories:
            cat_words = _genre_words(category)
            for start in range(len(words) - len(cat_words) + 1):
                if cat_words and words[start : start + len(cat_words)] == cat_words:
                    found.append((start + len(cat_words), len(cat_words), category))
        if found:
            return max(found)[2]
    return ""


def read_manifest(path: str | Path) -> tuple[list[ManifestRow], list[BadRow]]:
    """Read a CSV (with header) or JSONL manifest of tracks and their cover images.

    Columns: audio, image, title, artist, date, category (required); album, license (optional).
    Paths are relative to the manifest's folder. ``category`` may be empty (it is then inferred
    from the audio) or a genre that :func:`match_category` maps. Rows with a missing file, an
    empty audio/image field or an unknown category come back as :class:`BadRow`.

    Raises:
        ManifestError: the file cannot be read, is neither .csv nor .jsonl, or lacks columns.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ManifestError(f"manifest must be a .csv or .jsonl file, got {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"cannot read manifest {path}: {e}") from e
    records = _csv_records(text, path) if suffix == ".csv" else _jsonl_records(text, path)

    rows, bad = [], []
    for line, record in records:
        if isinstance(record, str):
            bad.append(BadRow(line, record))
            continue
        try:
            rows.append(_manifest_row(line, record, path.parent))
        except LibraryError as e:
            bad.append(BadRow(line, str(e)))
    return rows, bad


def _csv_records(text: str, path: Path) -> Iterable[tuple[int, dict | str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in MANIFEST_COLUMNS if c not in columns]
    if missing:
        raise ManifestError(
            f"manifest {path} lacks column(s) {', '.join(missing)} "
            f"(needs {', '.join(MANIFEST_COLUMNS)}; optional {', '.join(MANIFEST_OPTIONAL)})"
        )
    reader.fieldnames = columns
    records = []
    for record in reader:
        # DictReader puts surplus cells under None and fills short rows with None.
        if None in record or any(v is None for v in record.values()):
            records.append((reader.line_num, f"wrong number of cells ({len(columns)} expected)"))
            continue
        records.append((reader.line_num, record))
    if not records:
        raise ManifestError(f"manifest {path} has no rows")
    return records


def _jsonl_records(text: str, path: Path) -> Iterable[tuple[int, dict | str]]:
    records = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            records.append((line, f"not valid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(record, dict):
            records.append((line, f"not a JSON object but {type(record).__name__}"))
            continue
        missing = [c for c in MANIFEST_COLUMNS if c not in record]
        if missing:
            records.append((line, f"lacks field(s) {', '.join(missing)}"))
            continue
        records.append((line, record))
    if not records:
        raise ManifestError(f"manifest {path} has no rows")
    return records


def _manifest_row(line: int, record: dict, base: Path) -> ManifestRow:
    values = {}
    for key in MANIFEST_COLUMNS + MANIFEST_OPTIONAL:
        value = record.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise LibraryError(f"{key} must be text, got {value!r}")
        values[key] = str(value).strip()
    paths = {}
    for key in ("audio", "image"):
        if not values[key]:
            raise LibraryError(f"empty {key} path")
        paths[key] = (base / values[key]).resolve()
        if not paths[key].is_file():
            raise LibraryError(f"{key} file not found: {paths[key]}")
    category = values["category"]
    if category:
        category = match_category(category)
        if not category:
            from albumcover.prompts import CATEGORIES

            raise LibraryError(
                f"category {values['category']!r} is none of {', '.join(CATEGORIES)} "
                "(leave it empty to infer it from the audio)"
            )
    return ManifestRow(
        line=line,
        audio=paths["audio"],
        image=paths["image"],
        title=values["title"],
        artist=values["artist"],
        album=values["album"],
        date=values["date"],
        category=category,
        license=values["license"],
    )


def _genre_words(text: str) -> list[str]:
    text = text.lower().replace("&", " and ").replace("'n'", " and ")
    # "hip-hop", "hip hop" and "hiphop" are one genre: split on anything but letters and digits.
    return [w for w in re.split(r"[^0-9a-z]+", text) if w]


def _genre_key(text: str) -> str:
    return "".join(_genre_words(text))


def _first(value) -> str:
    """The first text of a tag value (mutagen gives lists), stripped."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value).strip()


def _text_tags(audio) -> TrackTags:
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    tags = audio.tags
    if tags is None:
        return TrackTags()
    if isinstance(tags, ID3):
        genre = tags["TCON"].genres if "TCON" in tags else []  # resolves "(17)" to "Rock"
        return TrackTags(
            title=_first(tags["TIT2"].text) if "TIT2" in tags else "",
            artist=_first(tags["TPE1"].text) if "TPE1" in tags else "",
            album=_first(tags["TALB"].text) if "TALB" in tags else "",
            album_artist=_first(tags["TPE2"].text) if "TPE2" in tags else "",
            date=_first(tags["TDRC"].text) if "TDRC" in tags else "",
            genre="; ".join(genre),
        )
    if isinstance(tags, MP4Tags):
        keys = ("\xa9nam", "\xa9ART", "\xa9alb", "aART", "\xa9day", "\xa9gen")
    else:  # Vorbis comments (FLAC, Ogg Vorbis, Opus); keys are case-insensitive there
        keys = ("title", "artist", "album", "albumartist", "date", "genre")
    values = [_first(tags[k]) if k in tags else "" for k in keys]
    return TrackTags(*values)


def _embedded_cover(audio, path: Path) -> bytes | None:
    from mutagen import MutagenError
    from mutagen.flac import Picture
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    tags = audio.tags
    pictures: list[tuple[int, bytes]] = []  # (picture type, image bytes)
    pictures += [(p.type, p.data) for p in getattr(audio, "pictures", [])]  # FLAC blocks
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
    pictures = [(kind, data) for kind, data in pictures if data]
    if not pictures:
        return None
    # The front cover when tagged as such, else the first picture (many taggers leave type 0).
    fronts = [data for kind, data in pictures if kind == FRONT_COVER]
    return fronts[0] if fronts else pictures[0][1]
