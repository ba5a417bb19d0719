"""Test media for the release kit: synthetic songs with known beats, covers, and what ffprobe
and ffmpeg say about the videos the kit writes."""

import json
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image


def write_song(path, seconds: float, sr: int = 44100, bpm: float = 120.0, quiet_until=0.0):
    """A stereo WAV: a soft chord with a noise click on every beat at ``bpm``; before
    ``quiet_until`` seconds everything is 20 dB softer (so the loudest stretch is known)."""
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t))
    rng = np.random.default_rng(7)
    click = rng.normal(0, 0.6, 1500) * np.exp(-np.arange(1500) / 250)
    for beat in np.arange(0, seconds, 60.0 / bpm):
        i = int(beat * sr)
        y[i : i + len(click)] += click[: len(y) - i]
    y[t < quiet_until] *= 0.1
    sf.write(path, np.stack([y, 0.9 * y], 1).astype(np.float32), sr)
    return Path(path)


def cover_image(side: int = 512) -> Image.Image:
    """A square 'painting': smooth colour ramps and a white block left of the centre."""
    x = np.linspace(0, 1, side)
    art = np.stack([np.outer(x, 1 - x) * 4, np.outer(1 - x, x) * 4, np.outer(x, x)], -1) * 255
    art = art.clip(0, 255).astype(np.uint8)
    art[side * 4 // 10 : side * 6 // 10, side * 3 // 10 : side * 5 // 10] = 255
    return Image.fromarray(art)


def probe(path) -> dict:
    """ffprobe's streams and format of ``path``, as JSON."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def stream(info: dict, kind: str) -> dict | None:
    found = [s for s in info["streams"] if s["codec_type"] == kind]
    assert len(found) <= 1, found
    return found[0] if found else None


def frames(path, width: int, height: int) -> np.ndarray:
    """Every frame of a video scaled to ``width`` x ``height``, shape (n, height, width, 3)."""
    run = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(path), "-vf", f"scale={width}:{height}"]
        + ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    )
    return np.frombuffer(run.stdout, np.uint8).reshape(-1, height, width, 3)


def atoms(path) -> list[str]:
    """The top-level MP4 boxes in file order (faststart: moov before mdat)."""
    data = Path(path).read_bytes()
    names, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        names.append(data[at + 4 : at + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[at + 8 : at + 16], "big")
        if size < 8:
            break
        at += size
    return names
