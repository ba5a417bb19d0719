"""Raw frames streamed to the ``ffmpeg`` program: no frame folders, one frame in memory at a time.

:class:`FrameEncoder` starts ffmpeg reading rgb24 frames of a fixed size from its stdin (plus any
other inputs, e.g. the song) and writing one MP4. Its log goes to a temporary file, not a pipe:
a long encode can log more than a pipe buffer holds, and a full pipe would stall ffmpeg while we
wait on its stdin. The file is written beside its target and renamed into place only when ffmpeg
succeeds (:func:`albumcover.files.atomic_path`), so a failed or interrupted encode leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..files import atomic_path


class KitError(ValueError):
    """A kit item that cannot be made as asked: the message names the input and the reason."""


def ffmpeg_program() -> str:
    """The path of the ffmpeg program, or :class:`KitError` saying how to install it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise KitError(
            "the release kit needs the ffmpeg program, which was not found on PATH; install "
            "ffmpeg (e.g. `apt install ffmpeg`, `brew install ffmpeg`)"
        )
    return ffmpeg


class FrameEncoder:
    """``with FrameEncoder(out, (width, height), fps, output_args, inputs=[...]) as enc:
    enc.write(frame)`` -> ``out`` is an MP4 once the block ends cleanly.

    frame: a (height, width, 3) uint8 array, or its bytes. ``inputs``: further ffmpeg input
    arguments (e.g. ``["-t", "600", "-i", "file:song.mp3"]``); ``output_args``: codecs, maps and
    flags, placed before the output file. The frames are input 0.
    """

    def __init__(self, out, size, fps, output_args, inputs=()):
        self.out = Path(out)
        self.width, self.height = size
        self.frame_bytes = self.width * self.height * 3
        self.cmd = [ffmpeg_program(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]
        self.cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{self.width}x{self.height}"]
        self.cmd += ["-framerate", str(fps), "-i", "pipe:0", *inputs, *output_args]
        self.frames = 0

    def __enter__(self):
        self._target = atomic_path(self.out)
        tmp = self._target.__enter__()
        self._log = tempfile.TemporaryFile()
        # -f mp4: the temp name's suffix is .tmp, so the container is named, not guessed
        self._proc = subprocess.Popen(
            [*self.cmd, "-f", "mp4", "-y", f"file:{tmp}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        return self

    def write(self, frame: np.ndarray | bytes) -> None:
        data = frame if isinstance(frame, bytes) else np.ascontiguousarray(frame).tobytes()
        if len(data) != self.frame_bytes:
            raise ValueError(f"a frame must be {self.width}x{self.height} rgb24")
        try:
            self._proc.stdin.write(data)
        except BrokenPipeError:  # ffmpeg stopped: its log says why, at the end of the block
            self._failed = True
            return
        self.frames += 1

    def _report(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return "; ".join(lines[-3:]) or "no message"

    def __exit__(self, kind, error, tb):
        try:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
            if kind is not None:  # our own error (or an interrupt): stop ffmpeg, keep nothing
                self._proc.kill()
                self._proc.wait()
                return self._target.__exit__(kind, error, tb)
            code = self._proc.wait()
            if code != 0 or getattr(self, "_failed", False):
                failure = KitError(f"ffmpeg could not write {self.out.name}: {self._report()}")
                self._target.__exit__(KitError, failure, None)
                raise failure
            return self._target.__exit__(None, None, None)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self._log.close()


def seconds_flag(seconds: float) -> str:
    """A duration as ffmpeg reads it (``-t``), to the microsecond."""
    return f"{seconds:.6f}"


def file_input(path: str | os.PathLike) -> str:
    """An input path ffmpeg never takes for a URL, a protocol or an option."""
    return f"file:{Path(path).resolve()}"
