"""A local source of songs to click (``ALBUMCOVER_EXAMPLES``) for the app's tests and screenshots:
a JSON manifest whose ``file://`` and relative URLs point at the shared clip and at a short
synthetic song written next to it. Nothing is fetched from the network."""

import json
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22050


def write_synthetic_song(path: Path, seconds: float = 12.0) -> Path:
    """A short wav: a minor-chord pad with a kick on every beat at 120 bpm (seeded noise)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pad = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.63, 329.63)) / 6
    beat = (t % 0.5) < 0.08
    kick = beat * np.sin(2 * np.pi * 55 * t) * np.exp(-((t % 0.5) * 40))
    noise = np.random.default_rng(0).normal(0, 0.02, t.size)
    sf.write(path, (pad + kick + noise).astype(np.float32), SAMPLE_RATE)
    return path


def write_example_source(folder: Path, clip: Path) -> Path:
    """``folder/examples.json`` listing the shared clip (an absolute ``file://`` URL) and a
    synthetic song (a URL relative to the manifest); returns the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_synthetic_song(folder / "pad-and-kick.wav")
    songs = [
        {
            "title": "Night Drive",
            "artist": "Ana",
            "genre": "blues rock",
            "url": clip.resolve().as_uri(),
            "licence": "Musicnn's example clip",
            "licence_url": "https://github.com/jordipons/musicnn",
            "source": "https://github.com/jordipons/musicnn",
            "date": "2024",
        },
        {
            "title": "Pad and Kick",
            "artist": "the test suite",
            "genre": "synth",
            "url": "pad-and-kick.wav",
            "licence": "CC0 1.0",
            "licence_url": "https://creativecommons.org/publicdomain/zero/1.0/",
            "source": "https://github.com/jordipons/musicnn",
        },
    ]
    manifest = folder / "examples.json"
    manifest.write_text(json.dumps(songs, indent=1))
    return manifest
