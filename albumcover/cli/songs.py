"""The songs a command line names: an album folder's tracks, a track's SongInfo from its tags."""

from __future__ import annotations

import re

from ..ear.audio import AUDIO_EXTENSIONS
from ..prompts import SongInfo
from ..songfile.tags import SongFileError, SongTags, match_category, read_song_tags


def album_tracks(folder) -> list:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def track_song(path, flags):
    """A track's SongInfo as the dataset builder captions it: title, artist, date and genre
    category from its tags (:func:`albumcover.songfile.tags.read_song_tags`, the reader the builder
    uses), each flag given winning over its tag; no title tag: the file name without a leading
    track number."""

    try:
        tags = read_song_tags(path)
    except SongFileError:  # unreadable tags: decoding will say whether it is audio at all
        tags = SongTags()
    title = tags.title or re.sub(r"^\d+\s*[-._ ]\s*", "", path.stem).strip()
    return SongInfo(
        title=title,
        artist=flags.artist or tags.artist,
        date=flags.date or tags.date,
        category=flags.category or match_category(tags.genre),
    )
