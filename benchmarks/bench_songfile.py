"""Writing a cover into a song file: embed_cover per container, against ffmpeg doing the same.

    .venv/bin/python -m benchmarks.bench_songfile --seconds 180 --repeat 5

Encodes ``--seconds`` of the shared clip (looped) into every container, makes a 3000 x 3000
JPEG cover (noise over a gradient, so it is as large as a real export: a few MB), and times
``embed_cover`` into a copy (the app's and the CLI's path) and in place, median of ``--repeat``
runs, plus ``read_song_tags``. The reference is ffmpeg's own cover embedding with stream copy
(``-map 0:a -map 1 -c copy -disposition:v attached_pic``), for the containers it can do that in.
CPU seconds sit beside wall seconds because on a shared machine the wall clock also counts
other people's work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"
CODECS = {
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "256k"],
    ".flac": ["-c:a", "flac"],
    ".m4a": ["-c:a", "aac", "-b:a", "256k"],
    ".ogg": ["-c:a", "libvorbis"],
    ".opus": ["-c:a", "libopus"],
    ".wav": ["-c:a", "pcm_s16le"],
}
FFMPEG_CAN_EMBED = (".mp3", ".flac", ".m4a")


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``fn()`` over ``repeat`` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), cpu_seconds()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def make_cover(path: Path, size: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = (ramp[None, :, None] + ramp[:, None, None]) / 2 + rng.normal(0, 24, (size, size, 3))
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=92)


def ffmpeg_embed(song: Path, cover: Path, out: Path) -> None:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(song), "-i", str(cover)]
    command += ["-map", "0:a", "-map", "1", "-c", "copy", "-disposition:v", "attached_pic"]
    subprocess.run([*command, str(out)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="song length (default 180)")
    parser.add_argument("--cover-size", type=int, default=3000, help="cover side in pixels")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    args = parser.parse_args()

    from albumcover.songfile.embed import embed_cover
    from albumcover.songfile.tags import read_song_tags

    with tempfile.TemporaryDirectory(prefix="bench-songfile-") as tmp:
        tmp = Path(tmp)
        cover = tmp / "cover.jpg"
        make_cover(cover, args.cover_size)
        print(
            f"{describe()}; "
            f"{args.seconds:.0f} s songs; cover {args.cover_size} px JPEG, "
            f"{cover.stat().st_size / 1e6:.2f} MB; median of {args.repeat}\n"
        )
        print(
            "| container | song MB | embed_cover copy s (CPU s) | in place s (CPU s) "
            "| read_song_tags ms | ffmpeg embed s (CPU s) |"
        )
        print("|---|---|---|---|---|---|")
        for ext, codec in CODECS.items():
            song = tmp / f"song{ext}"
            command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1"]
            command += ["-i", str(CLIP), "-t", str(args.seconds), "-vn", "-map_metadata", "-1"]
            subprocess.run([*command, *codec, str(song)], check=True)
            out = tmp / f"out{ext}"
            copy = timed(lambda s=song, o=out: embed_cover(s, cover, o), args.repeat)
            inplace_song = tmp / f"inplace{ext}"
            shutil.copyfile(song, inplace_song)
            inplace = timed(lambda s=inplace_song: embed_cover(s, cover, s), args.repeat)
            read = timed(lambda o=out: read_song_tags(o), args.repeat)
            ref = "n/a"
            if ext in FFMPEG_CAN_EMBED:
                wall, cpu = timed(lambda s=song, o=tmp / f"ff{ext}": ffmpeg_embed(s, cover, o), 3)
                ref = f"{wall:.3f} ({cpu:.3f})"
            print(
                f"| {ext[1:]} | {song.stat().st_size / 1e6:.1f} | {copy[0]:.3f} ({copy[1]:.3f}) "
                f"| {inplace[0]:.3f} ({inplace[1]:.3f}) | {read[0] * 1000:.1f} | {ref} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
