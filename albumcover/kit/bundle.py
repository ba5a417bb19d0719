"""A song's release kit in one call: the art track, the Canvas, the post and the story, written
into one folder as ``<stem>-art-track.mp4``, ``<stem>-canvas.mp4``, ``<stem>-post.jpg`` and
``<stem>-story.jpg``.

Everything that can be refused is checked before the slow part (texts, cover, settings, then the
song decoded once for both videos); each file is written atomically, so a failure or a rerun
never leaves half a file, and an item already written stays as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..ear.audio import DEFAULT_MAX_DURATION
from .canvas import DEFAULT_FPS as CANVAS_FPS
from .canvas import DEFAULT_SECONDS, DEFAULT_WIDTH, check_canvas_settings, render_canvas
from .compose import check_cover_image
from .ffmpeg import KitError
from .motion import Song, read_song
from .social import _texts, render_post, render_story, save_jpeg
from .video import render_art_track

KIT_ITEMS = ("video", "canvas", "social")
FILE_NAMES = {
    "video": ("{stem}-art-track.mp4",),
    "canvas": ("{stem}-canvas.mp4",),
    "social": ("{stem}-post.jpg", "{stem}-story.jpg"),
}

# (item, done, total): frames for the videos, images for the social formats
Progress = Callable[[str, int, int], None]


@dataclass
class Kit:
    """What :func:`make_kit` wrote: item name -> paths (``social``: post, story), and notes
    for the user (a song cut at the cap)."""

    files: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def paths(self) -> list[Path]:
        return [path for item in KIT_ITEMS for path in self.files.get(item, [])]


def parse_items(only: str | Iterable[str] | None) -> tuple[str, ...]:
    """The kit items asked for, in :data:`KIT_ITEMS` order: None is all of them; text is a
    comma-separated list ("video,social"). Raises :class:`KitError` for an unknown or empty one."""
    if only is None:
        return KIT_ITEMS
    names = only.split(",") if isinstance(only, str) else list(only)
    if not all(isinstance(n, str) for n in names):
        raise KitError(f"kit items must be some of {', '.join(KIT_ITEMS)}; got {only!r}")
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in KIT_ITEMS]
    if unknown or not names:
        raise KitError(f"kit items must be some of {', '.join(KIT_ITEMS)}; got {only!r}")
    return tuple(item for item in KIT_ITEMS if item in names)


def make_kit(
    song: str | os.PathLike | Song,
    cover: Image.Image,
    out_dir: str | os.PathLike,
    *,
    stem: str | None = None,
    title: str = "",
    artist: str = "",
    date_line: str = "",
    only: str | Iterable[str] | None = None,
    canvas_seconds: int = DEFAULT_SECONDS,
    canvas_width: int = DEFAULT_WIDTH,
    canvas_fps: int = CANVAS_FPS,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    progress: Progress | None = None,
) -> Kit:
    """Write the kit of ``song`` (a path, or a :class:`Song` already decoded) with ``cover``
    (a square PIL image) into ``out_dir``, file names from ``stem`` (default: the song's).

    ``title``/``artist`` are lettered on the art track's cover and the social formats (not on
    the Canvas: the player shows them), ``date_line`` on the social formats. ``only``: see
    :func:`parse_items`. Songs longer than ``max_duration`` s are cut there; the note says so.
    Raises :class:`KitError`, ``LetteringError`` or ``AudioError`` (all ValueError) before
    anything is written.
    """
    items = parse_items(only)
    title, artist, date_line = _texts(title, artist, date_line)
    cover = check_cover_image(cover)
    if "canvas" in items:
        check_canvas_settings(canvas_seconds, canvas_width, canvas_fps)
    path = song.path if isinstance(song, Song) else Path(song)
    stem = stem or path.stem
    if not stem.strip() or "/" in stem or stem in (".", ".."):
        raise KitError(f"the kit's file names need a plain stem; got {stem!r}")
    # decoded even for the social formats alone: a kit is made for a song, not for any file
    song = song if isinstance(song, Song) else read_song(path, max_duration)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kit = Kit()
    if song.capped:
        kit.notes.append(song.cap_note())

    def report(item):
        return None if progress is None else lambda done, total: progress(item, done, total)

    names = {item: [out / n.format(stem=stem) for n in FILE_NAMES[item]] for item in items}
    if "video" in items:
        render_art_track(
            song, cover, names["video"][0], title=title, artist=artist, progress=report("video")
        )
    if "canvas" in items:
        render_canvas(
            song,
            cover,
            names["canvas"][0],
            seconds=canvas_seconds,
            width=canvas_width,
            fps=canvas_fps,
            progress=report("canvas"),
        )
    if "social" in items:
        post, story = names["social"]
        save_jpeg(render_post(cover, title, artist, date_line), post)
        if progress is not None:
            progress("social", 1, 2)
        save_jpeg(render_story(cover, title, artist, date_line), story)
        if progress is not None:
            progress("social", 2, 2)
    kit.files = names
    return kit
