"""Dataset builder throughput: tracks per second, tagging included, against --num_workers.

    .venv/bin/python -m benchmarks.bench_dataset --tracks 24 [--num_workers 0,1,2,16]

Writes a library of N copies of the shared 30 s clip (mp3, tagged, a cover embedded; two tracks
per album) into a temp folder, builds the dataset from scratch (every track decoded and tagged)
once per ``--num_workers`` value (default 0 = in-process, 1, 2 and the core count; each in a
fresh output folder, so with an empty tag cache), then once more from the cache, and prints a
markdown table. The taggers are loaded before the clock starts; their load time is a separate
row. CPU seconds (this process and its finished children: the decoding workers) sit beside wall
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
    parser.add_argument(
        "--num_workers",
        default=f"0,1,2,{os.cpu_count()}",
        help="comma-separated decoding-process counts to time (0: decode in this process)",
    )
    args = parser.parse_args()
    try:
        worker_counts = list(dict.fromkeys(int(n) for n in args.num_workers.split(",")))
    except ValueError:
        parser.error(f"--num_workers wants integers like 0,1,2, got {args.num_workers!r}")
    if any(n < 0 for n in worker_counts):
        parser.error("--num_workers counts must be >= 0")

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
        music = Path(tmp) / "music"
        write_library(music, args.tracks)
        runs = []
        plan = [(f"cold, --num_workers {n}", n, Path(tmp) / f"dataset{n}") for n in worker_counts]
        plan.append(("re-run (cache)", worker_counts[-1], plan[-1][2]))
        for label, workers, out in plan:
            start, cpu_start = time.perf_counter(), cpu_seconds()
            summary = build_dataset(
                out,
                audio_dir=music,
                resolution=args.resolution,
                tagger=taggers[0],
                genre_tagger=taggers[1],
                progress=False,
                num_workers=workers,
            )
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            assert summary.total_rows == args.tracks, summary.format()
            runs.append((label, seconds, cpu, summary))

    from benchmarks.machine import describe

    cpu = describe()
    device = args.device or "cpu"
    print(
        f"\nMachine: {platform.system()} {cpu}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}, "
        f"taggers in {taggers[0].dtype} ({taggers[0].engine}), load average "
        + " / ".join(f"{x:.1f}" for x in os.getloadavg())
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
