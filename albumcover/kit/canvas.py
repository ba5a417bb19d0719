"""The Canvas: Spotify's 3-8 s vertical loop on the Now Playing screen, made from the cover.

A 9:16 window moves over the cover: a slow drift from side to side and a slow zoom, both one
period per loop, with gentle zoom pulses on the beats of the song's most energetic stretch
(:mod:`albumcover.kit.motion`). Brightness never changes (no flashing), there is no text (the
player shows the title and artist) and no audio. Spotify's guidelines: 3-8 s, 9:16, from 720 to
1080 px on the short side (720 x 1280 or 1080 x 1920 here); makers keep it under 10 MB at 24-30
fps.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .compose import check_cover_image
from .ffmpeg import FrameEncoder, KitError
from .motion import DRIFT_ZOOM, PULSE_ZOOM, Beats, Song, find_beats, zoom_curve

log = logging.getLogger(__name__)

SIZES = {720: (720, 1280), 1080: (1080, 1920)}  # width -> (width, height), both 9:16
DEFAULT_WIDTH = 720
MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 3, 8, 8
FPS_RANGE, DEFAULT_FPS = (24, 30), 24
MAX_BYTES = 10_000_000
DRIFT = 0.7  # of the room the window has to move sideways, used at the drift's extremes
_MAXRATE_MBPS = 6  # the encoder's ceiling: 8 s at 6 Mbit/s stays under 6 MB

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Canvas:
    """A written Canvas: its path, frame size, frame rate, frame count, seconds, and the beats
    its pulses follow."""

    path: Path
    size: tuple[int, int]
    fps: int
    frames: int
    seconds: float
    beats: Beats


def check_canvas_settings(seconds, width, fps) -> None:
    """Raise :class:`KitError` for a length, width or frame rate Spotify does not take."""

    def whole(name, value, allowed_text, ok):
        if isinstance(value, bool) or not isinstance(value, int) or not ok(value):
            raise KitError(f"canvas {name} must be {allowed_text}; got {value!r}")

    whole(
        "seconds",
        seconds,
        f"a whole number from {MIN_SECONDS} to {MAX_SECONDS}",
        lambda v: MIN_SECONDS <= v <= MAX_SECONDS,
    )
    whole("width", width, " or ".join(map(str, SIZES)), lambda v: v in SIZES)
    whole("fps", fps, f"from {FPS_RANGE[0]} to {FPS_RANGE[1]}", lambda v: FPS_RANGE[0] <= v <= 30)


def canvas_frames(cover: Image.Image, beats: Beats, seconds: int, size, fps: int):
    """Yield the loop's frames, (height, width, 3) uint8 each: frame k shows time k / fps, and
    the motion is periodic in ``seconds``, so the frame after the last is the first."""
    width, height = size
    # the source is large enough that the deepest zoom still reads it at >= 1 source px per px
    side = math.ceil(height * (1 + DRIFT_ZOOM + PULSE_ZOOM))
    source = cover.resize((side, side), Image.Resampling.LANCZOS)
    count = seconds * fps
    times = np.arange(count) / fps
    zooms = zoom_curve(times, beats, float(seconds))
    phase = 2.0 * math.pi * times / seconds
    for zoom, angle in zip(zooms, phase, strict=True):
        # the window: 9:16, the full source height at zoom 1
        window_h = side / zoom
        window_w = window_h * width / height
        room = (side - window_w) / 2
        cx = side / 2 + DRIFT * room * math.sin(angle)
        cy = side / 2 + 0.5 * (side - window_h) / 2 * math.sin(2 * angle)
        scale = window_h / height
        matrix = (scale, 0.0, cx - window_w / 2, 0.0, scale, cy - window_h / 2)
        frame = source.transform(
            size, Image.Transform.AFFINE, matrix, resample=Image.Resampling.BILINEAR
        )
        yield np.asarray(frame)


def render_canvas(
    song: Song,
    cover: Image.Image,
    out: str | os.PathLike,
    *,
    seconds: int = DEFAULT_SECONDS,
    width: int = DEFAULT_WIDTH,
    fps: int = DEFAULT_FPS,
    preset: str = "veryfast",
    progress: Progress | None = None,
) -> Canvas:
    """Write ``out`` (MP4, H.264 yuv420p, no audio): a ``seconds``-long 9:16 loop over
    ``cover`` at ``width`` x 16/9 ``width`` px and ``fps``, pulsing on the beats of ``song``'s
    most energetic stretch; ``preset``: x264's (veryfast: half of "fast"'s time at the same
    quality setting, see benchmarks/bench_kit.py). Raises :class:`KitError` for settings outside
    Spotify's range or a file over :data:`MAX_BYTES`."""
    check_canvas_settings(seconds, width, fps)
    cover = check_cover_image(cover)
    beats = find_beats(song, seconds)
    size = SIZES[width]
    total = seconds * fps
    output = ["-c:v", "libx264", "-preset", preset, "-crf", "19"]
    output += ["-maxrate", f"{_MAXRATE_MBPS}M", "-bufsize", f"{2 * _MAXRATE_MBPS}M"]
    output += ["-pix_fmt", "yuv420p", "-profile:v", "high", "-g", str(total), "-flags", "+cgop"]
    output += ["-r", str(fps), "-an", "-map_metadata", "-1", "-movflags", "+faststart"]
    with FrameEncoder(out, size, fps, output) as encoder:
        for done, frame in enumerate(canvas_frames(cover, beats, seconds, size, fps)):
            encoder.write(frame)
            if progress is not None:
                progress(done + 1, total)
    written = Path(out).stat().st_size
    if written > MAX_BYTES:  # cannot happen at the rate ceiling; said, not shipped, if it does
        Path(out).unlink()
        raise KitError(f"the Canvas came out at {written / 1e6:.1f} MB, over Spotify's 10 MB")
    log.info(
        "canvas %s: %ds at %d fps, stretch from %.1f s, %d beats (%.0f bpm)",
        out,
        seconds,
        fps,
        beats.start,
        len(beats.times),
        beats.tempo,
    )
    return Canvas(Path(out), size, fps, total, float(seconds), beats)
