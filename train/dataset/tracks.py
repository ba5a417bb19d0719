"""The tracks of a music library, collected from a folder or a manifest
(:mod:`train.dataset.library`): their tags, and where each one's cover comes from."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from albumcover.songfile.tags import SongTags, match_category, read_front_cover

from .library import (
    LibraryError,
    find_audio_files,
    find_folder_cover,
    read_manifest,
    read_track,
)
from .summary import BAD_ROW, BuildSummary, Skipped

logger = logging.getLogger(__name__)


@dataclass
class Track:
    """One audio file to caption, with its metadata and where its cover comes from."""

    source: str  # path relative to the audio folder (or manifest folder), as written in rows
    audio: Path
    tags: SongTags
    category: str = ""  # one of CATEGORIES, or "" to infer it from the audio
    license: str = ""
    tag_error: str = ""  # why mutagen could not read the file, if it could not
    # Where the cover comes from: the audio file itself (an embedded picture) or an image
    # beside it / named by the manifest. Only the path is kept: a library holds thousands of
    # covers, so their bytes are read when needed, once per album.
    cover: Path | None = None
    cover_embedded: bool = False

    def read_cover(self) -> bytes:
        """The cover's encoded bytes; raises OSError or ValueError (LibraryError, SongFileError)."""
        if not self.cover_embedded:
            return self.cover.read_bytes()
        data = read_front_cover(self.cover)  # only the picture: no tags to clean again
        if data is None:
            raise LibraryError(f"the embedded picture of {self.cover} is gone")
        return data

    @property
    def year(self) -> str:
        """The release year from the date tag, or "" when it has none."""
        year = self.tags.year
        return str(year) if year else ""

    @property
    def album_key(self) -> tuple[str, ...]:
        """Tracks with the same album and album artist share a cover; others stand alone."""
        if not self.tags.album:
            return ("track", self.source)
        artist = self.tags.album_artist or self.tags.artist
        return ("album", artist.casefold().strip(), self.tags.album.casefold().strip())


def _collect_folder(audio_dir: Path) -> list[Track]:
    tracks = []
    folder_covers: dict[Path, Path | None] = {}
    for path in find_audio_files(audio_dir):
        source = path.relative_to(audio_dir).as_posix()
        try:
            tags, embedded = read_track(path)
        except LibraryError as e:
            # Decoding decides whether it is audio at all; tags are optional.
            logger.info("no tags for %s: %s", path, e)
            tags, embedded, tag_error = SongTags(), None, str(e)
        else:
            tag_error = ""
        if path.parent not in folder_covers:
            folder_covers[path.parent] = find_folder_cover(path.parent)
        tracks.append(
            Track(
                source=source,
                audio=path,
                tags=tags,
                category=match_category(tags.genre),
                cover=path if embedded else folder_covers[path.parent],
                cover_embedded=embedded is not None,
                tag_error=tag_error,
            )
        )
    return tracks


def _collect_manifest(manifest: Path, summary: BuildSummary) -> list[Track]:
    rows, bad = read_manifest(manifest)
    for row in bad:
        summary.skipped.append(Skipped(f"{manifest.name} line {row.line}", BAD_ROW, row.reason))
    base = manifest.resolve().parent
    return [
        Track(
            source=Path(os.path.relpath(row.audio, base)).as_posix(),
            audio=row.audio,
            tags=SongTags(
                title=row.title, artist=row.artist, album=row.album, date=row.date, notes=row.notes
            ),
            category=row.category,
            license=row.license,
            cover=row.image,
        )
        for row in rows
    ]
