"""Dataset builder throughput: tracks per second, tagging included, cold and re-run.

    .venv/bin/python benchmarks/bench_dataset.py --tracks 24

Writes a library of N copies of the shared 30 s clip (mp3, tagged, a cover embedded; two tracks
per album) into a temp folder, builds the dataset once from scratch (every track decoded and
tagged) and once more (everything from the cache), and prints a markdown table. The taggers are
loaded before the clock starts; their load time is a separate row. CPU seconds sit beside wall
seconds because on a shared machine the wall clock also counts other people's work.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"


def write_library(folder: Path, n: int) -> None:
    """N tagged mp3 copies of the clip with a 600x600 JPEG cover per album of two tracks."""
    from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1
    from PIL import Image

    genres = ("Rock", "Jazz", "", "Techno")  # "" leaves the category to the genre tagger
    for i in range(n):
        album = i // 2
        path = folder / f"album{album:03d}" / f"{i:03d}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CLIP, path)
        cover = io.BytesIO()
        Image.new("RGB", (600, 600), (40 * album % 256, 90, 160)).save(cover, "JPEG")
        tags = ID3()
        tags.add(TIT2(encoding=3, text=[f"Track {i}"]))
        tags.add(TPE1(encoding=3, text=["Bench Artist"]))
        tags.add(TALB(encoding=3, text=[f"Album {album}"]))
        if genres[album % 4]:
            tags.add(TCON(encoding=3, text=[genres[album % 4]]))
        tags.add(APIC(encoding=3, mime="image/jpeg", type=3, desc="", data=cover.getvalue()))
        tags.save(path)


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg decoders)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=24, help="tracks in the synthetic library")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--device", default=None, help="torch device of the taggers")
    args = parser.parse_args()

    import torch

    from albumcover.tagger import Tagger
    from train.build_dataset import build_dataset

    start = time.perf_counter()
    taggers = (
        Tagger.load("MTT_musicnn", device=args.device),
        Tagger.load("MSD_musicnn", device=args.device),
    )
    load_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        music, out = Path(tmp) / "music", Path(tmp) / "dataset"
        write_library(music, args.tracks)
        runs = []
        for label in ("cold (decode + tag + covers)", "re-run (cache)"):
            start, cpu_start = time.perf_counter(), cpu_seconds()
            summary = build_dataset(
                out,
                audio_dir=music,
                resolution=args.resolution,
                tagger=taggers[0],
                genre_tagger=taggers[1],
                progress=False,
            )
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            assert summary.total_rows == args.tracks, summary.format()
            runs.append((label, seconds, cpu, summary))

    cpu = platform.processor() or platform.machine()
    device = args.device or "cpu"
    print(
        f"\nMachine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
    )
    print(f"{args.tracks} tracks x 30 s mp3, {args.tracks // 2} albums, {args.resolution} px\n")
    print("| run | wall s | tracks/s | CPU s (all processes) | tagged | from cache |")
    print("|---|---|---|---|---|---|")
    print(f"| load MTT_musicnn + MSD_musicnn | {load_s:.2f} | | | | |")
    for label, seconds, cpu, summary in runs:
        rate = args.tracks / seconds
        print(
            f"| {label} | {seconds:.2f} | {rate:.2f} | {cpu:.1f} | {summary.tagged} "
            f"| {summary.cached} |"
        )


if __name__ == "__main__":
    main()
