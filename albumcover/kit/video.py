"""The art track: the 1920 x 1080 MP4 a distributor makes of each track for YouTube, the cover
centred over a blurred, darkened enlargement of itself, with the song's whole audio.

Within YouTube's recommended upload settings: H.264 progressive, yuv420p, closed GOP, the moov
atom at the front (faststart), AAC-LC at 48 kHz. A still picture needs few frames: the video runs
at :data:`DEFAULT_FPS` with a keyframe every :data:`GOP_SECONDS`, so a 3-minute song is 360
frames, nearly all of them skipped blocks. The audio is encoded from the original file (not from
our decoded copy), cut at the kit's cap when the song is longer.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .compose import backdrop, check_cover_image, lettered
from .ffmpeg import FrameEncoder, file_input, seconds_flag
from .motion import Song

log = logging.getLogger(__name__)

SIZE = (1920, 1080)
DEFAULT_FPS = 2  # frames per second: a still picture; YouTube accepts any rate
GOP_SECONDS = 10  # a keyframe every 10 s: seeking stays quick, the stream stays small
COVER_SIDE = 864  # pixels: 80 % of the frame's height, centred
AUDIO_RATE = 48000  # Hz, YouTube's recommendation
AUDIO_BITRATE = "320k"  # YouTube asks for 384 kbps stereo; AAC-LC 320k is transparent

Progress = Callable[[int, int], None]  # (frames done, frames in all)


@dataclass(frozen=True)
class ArtTrack:
    """A written art track: its path, frame count, frame rate and duration (s)."""

    path: Path
    frames: int
    fps: int
    duration: float


def art_track_frame(cover: Image.Image, title: str = "", artist: str = "") -> Image.Image:
    """The art track's one picture, 1920 x 1080 RGB: ``cover`` (square) lettered with ``title``
    and ``artist`` as on the cover, :data:`COVER_SIDE` px, centred over its blurred backdrop."""
    cover = check_cover_image(cover)
    frame = backdrop(cover, SIZE)
    front = lettered(cover, COVER_SIDE, title, artist)
    frame.paste(front, ((SIZE[0] - COVER_SIDE) // 2, (SIZE[1] - COVER_SIDE) // 2))
    return frame


def render_art_track(
    song: Song,
    cover: Image.Image,
    out: str | os.PathLike,
    *,
    title: str = "",
    artist: str = "",
    fps: int = DEFAULT_FPS,
    progress: Progress | None = None,
) -> ArtTrack:
    """Write ``out`` (MP4): :func:`art_track_frame` for the length of ``song`` (a
    :class:`~albumcover.kit.motion.Song`, already capped), its audio from ``song.path``.

    The video has ceil(duration x fps) frames, so its length and the audio's differ by less than
    one frame. Frames are streamed to ffmpeg one at a time: memory does not grow with the song.
    """
    frame = art_track_frame(cover, title, artist).tobytes()  # check the text before encoding
    total = max(1, math.ceil(song.duration * fps))
    gop = fps * GOP_SECONDS
    inputs = ["-t", seconds_flag(song.duration), "-i", file_input(song.path)]
    output = ["-map", "0:v:0", "-map", "1:a:0", "-map_metadata", "-1"]
    output += ["-c:v", "libx264", "-preset", "veryfast", "-tune", "stillimage", "-crf", "18"]
    output += ["-pix_fmt", "yuv420p", "-profile:v", "high", "-g", str(gop), "-flags", "+cgop"]
    output += ["-r", str(fps), "-c:a", "aac", "-profile:a", "aac_low", "-b:a", AUDIO_BITRATE]
    output += ["-ar", str(AUDIO_RATE), "-movflags", "+faststart"]
    with FrameEncoder(out, SIZE, fps, output, inputs) as encoder:
        for done in range(total):
            encoder.write(frame)
            if progress is not None and (done % fps == 0 or done == total - 1):
                progress(done + 1, total)
    log.info("art track %s: %d frames at %d fps, %.1f s", out, total, fps, song.duration)
    return ArtTrack(Path(out), total, fps, song.duration)
