"""Songs to click: a few open-licence songs of different genres, fetched once at start-up into
the user cache and offered under the song input as ``gr.Examples``, with their attribution.

The default source is :data:`DEFAULT_SONGS` (Kevin MacLeod's incompetech.com, CC BY 4.0, and a
CC0 recording on Wikimedia Commons). ``ALBUMCOVER_EXAMPLES`` (read by app.py) replaces it with
a JSON manifest (a path or URL: a list of objects with :class:`ExampleSong`'s fields; a relative
``url`` is read from the manifest's folder) or ``none``. A song that cannot be fetched (no
network, a moved file, not audio) is left out with a log line; with none left there is no
examples row, and nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import mutagen
import platformdirs

log = logging.getLogger("albumcover.app")

FETCH_TIMEOUT = 20.0  # seconds per song (connect and each read): start-up must not hang
MAX_BYTES = 30 * 2**20  # a song file; more is not a song to click
CC_BY_4 = "https://creativecommons.org/licenses/by/4.0/"


@dataclass(frozen=True)
class ExampleSong:
    """One song to click: what the form is filled with (``title``, ``artist``, ``date``), its
    ``genre`` (the example's label), where it is fetched from (``url``), its ``licence`` with
    ``licence_url``, and ``source``: the page that states them."""

    title: str
    artist: str
    genre: str
    url: str
    licence: str
    licence_url: str
    source: str
    date: str = ""

    def attribution(self) -> str:
        """One Markdown line crediting the song as its licence asks."""
        return (
            f"“{self.title}” by {self.artist} ({self.genre}), [{self.licence}]"
            f"({self.licence_url}), from [{urllib.parse.urlsplit(self.source).netloc}]"
            f"({self.source})"
        )


def _incompetech(title: str, genre: str, date: str) -> ExampleSong:
    return ExampleSong(
        title=title,
        artist="Kevin MacLeod",
        genre=genre,
        url="https://incompetech.com/music/royalty-free/mp3-royaltyfree/"
        + urllib.parse.quote(title)
        + ".mp3",
        licence="CC BY 4.0",
        licence_url=CC_BY_4,
        source="https://incompetech.com/music/royalty-free/music.html",
        date=date,
    )


DEFAULT_SONGS = (
    _incompetech("Bossa Antigua", "bossa nova", "2011"),
    _incompetech("Griphop", "hip hop", "2014"),
    _incompetech("Electrodoodle", "electronic", "2014"),
    ExampleSong(
        title="Gymnopédie No. 1",
        artist="Erik Satie, played by Teknopazzo",
        genre="classical piano",
        url="https://upload.wikimedia.org/wikipedia/commons/b/b7/Gymnopedie_No._1..ogg",
        licence="CC0 1.0",
        licence_url="https://creativecommons.org/publicdomain/zero/1.0/",
        source="https://commons.wikimedia.org/wiki/File:Gymnopedie_No._1..ogg",
        date="1888",
    ),
)


class ExampleError(ValueError):
    """A manifest of example songs that cannot be read: its message says what is wrong."""


def read_manifest(location: str) -> tuple[ExampleSong, ...]:
    """The songs of a JSON manifest at ``location`` (a path, ``file://`` or ``https://`` URL):
    a list of objects with :class:`ExampleSong`'s fields. A relative ``url`` is resolved
    against the manifest's own location. Raises :class:`ExampleError`."""
    base = _as_url(location)
    try:
        with urllib.request.urlopen(base, timeout=FETCH_TIMEOUT) as response:
            entries = json.loads(response.read(MAX_BYTES))
    except (OSError, ValueError) as e:
        raise ExampleError(f"example manifest {location}: cannot read it ({e})") from e
    names = {f.name for f in fields(ExampleSong)}
    required = {f.name for f in fields(ExampleSong) if f.name != "date"}
    if not isinstance(entries, list):
        raise ExampleError(f"example manifest {location}: not a JSON list of songs")
    songs = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not required <= entry.keys() <= names:
            raise ExampleError(
                f"example manifest {location}: song {i + 1} must have the fields "
                f"{', '.join(sorted(required))} (and optionally date)"
            )
        if not all(isinstance(v, str) for v in entry.values()):
            raise ExampleError(f"example manifest {location}: song {i + 1}: fields are text")
        songs.append(ExampleSong(**{**entry, "url": urllib.parse.urljoin(base, entry["url"])}))
    return tuple(songs)


def _as_url(location: str) -> str:
    if urllib.parse.urlsplit(location).scheme in ("http", "https", "file"):
        return location
    return Path(location).expanduser().resolve().as_uri()


def default_cache() -> Path:
    """Where fetched songs are kept between starts: the user cache's ``examples`` folder."""
    return platformdirs.user_cache_path("albumcover") / "examples"


def fetch_examples(
    songs: tuple[ExampleSong, ...], cache: Path, timeout: float = FETCH_TIMEOUT
) -> list[tuple[ExampleSong, Path]]:
    """Each song that is in ``cache`` or can be fetched into it, with its local file, in the
    order given. Fetched side by side; a song that fails (no network, not audio, too large) is
    logged and left out, so an empty list means: no examples."""
    with ThreadPoolExecutor(max_workers=max(1, len(songs))) as pool:
        files = list(pool.map(lambda song: _fetch(song, cache, timeout), songs))
    return [(song, path) for song, path in zip(songs, files, strict=True) if path is not None]


def _fetch(song: ExampleSong, cache: Path, timeout: float) -> Path | None:
    suffix = Path(urllib.parse.urlsplit(song.url).path).suffix.lower() or ".audio"
    target = cache / (hashlib.sha256(song.url.encode()).hexdigest()[:16] + suffix)
    if target.is_file():
        return target
    part = None
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cache, suffix=suffix, delete=False) as out:
            part = Path(out.name)
            with urllib.request.urlopen(song.url, timeout=timeout) as response:
                shutil.copyfileobj(_capped(response, song.url), out)
        if not _is_audio(part):  # e.g. an error page served with a 200
            raise ExampleError(f"{song.url} is not an audio file")
        os.replace(part, target)  # whole files only: a failed fetch leaves nothing behind
        return target
    except (OSError, ValueError) as e:
        log.warning("example song %r left out: %s", song.title, e)
        if part is not None:
            part.unlink(missing_ok=True)
        return None


def _is_audio(path: Path) -> bool:
    try:
        return mutagen.File(path) is not None
    except mutagen.MutagenError:  # looked like a format, then broke
        return False


class _capped:
    """A response read in chunks that raises ExampleError past :data:`MAX_BYTES`."""

    def __init__(self, response, url: str):
        self.response, self.url, self.total = response, url, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.response.read(size if size > 0 else 2**20)
        self.total += len(chunk)
        if self.total > MAX_BYTES:
            raise ExampleError(f"{self.url} is larger than {MAX_BYTES // 2**20} MB")
        return chunk
