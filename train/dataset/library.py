"""Reading a music library: audio files, their tags and cover art, or a manifest that lists them.

Tags and embedded covers are read by :mod:`albumcover.songfile.tags` (the one song-tag reader, which
the CLI's album mode uses too, so prompts and training captions agree); a cover not in the file
comes from an image beside it (``cover.*``, ``folder.*``, ``front.*``). Nothing here tags audio
or writes files.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from albumcover.ear.audio import AUDIO_EXTENSIONS
from albumcover.prompts import CATEGORIES
from albumcover.songfile.tags import (
    SongFileError,
    SongTags,
    match_category,
    read_front_cover,
    read_song_tags,
)
from albumcover.songfile.tagtext import clean_tag_text

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
# Folder images, best first: the names players and taggers (foobar2000, MusicBrainz Picard) write.
FOLDER_COVER_NAMES = ("cover", "folder", "front")

MANIFEST_COLUMNS = ("audio", "image", "title", "artist", "date", "category")
MANIFEST_OPTIONAL = ("album", "license")


class LibraryError(ValueError):
    """A music file or manifest that cannot be read; the message names the file."""


class ManifestError(LibraryError):
    """A manifest that cannot be used at all (unreadable, unknown format, missing columns)."""


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
    notes: tuple[str, ...] = ()  # title/artist/album text repaired or dropped, and why


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


def read_track(path: str | Path) -> tuple[SongTags, bytes | None]:
    """Read the tags and the embedded front cover (encoded image bytes, or None) of a file.

    Raises:
        LibraryError: mutagen cannot parse the file (not audio, truncated, unknown format).
    """
    try:
        return read_song_tags(path), read_front_cover(path)
    except SongFileError as e:
        raise LibraryError(str(e)) from e


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
            raise LibraryError(
                f"category {values['category']!r} is none of {', '.join(CATEGORIES)} "
                "(leave it empty to infer it from the audio)"
            )
    notes = []
    for key in ("title", "artist", "album"):  # the text captions are written from
        values[key], note = clean_tag_text(values[key])
        if note:
            notes.append(f"{key}: {note}")
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
        notes=tuple(notes),
    )
