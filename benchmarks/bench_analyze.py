"""Analyze latency: what the app's Analyze button costs for a 3-minute song, against one network.

    .venv/bin/python -m benchmarks.bench_analyze [--runs 5] [--dtype auto|fp32|bf16]

Analyze calls :func:`albumcover.pipeline.describe_song` with the app's two taggers (MTT_musicnn
for the prompt's tags, MSD_musicnn for the genre when the user gives no category): one decode,
one set of log-mel patches shared by both networks (the genre network hears the recipe's
``genre_patches`` of them, spread over the song), then the prompt. This times that call on
a 3-minute mp3 (the shared clip 6 times, re-encoded once) with and without a category, and
with the genre network on every patch (recipes of format 1), beside one network alone on the
song's patches, alternating them in each round; best of --runs rounds, wall and CPU seconds
(CPU is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.bench_tagger import CLIP, make_song
from benchmarks.machine import describe


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="alternating rounds (best of)")
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--copies", type=int, default=6, help="copies of the clip (6 = 3 min)")
    args = parser.parse_args()
    if args.runs < 1 or args.copies < 1:
        parser.error("--runs and --copies must be >= 1")

    import torch

    from albumcover.ear.audio import load_audio
    from albumcover.ear.features import song_patches
    from albumcover.ear.tagger import Tagger
    from albumcover.pipeline import describe_song
    from albumcover.prompts import SongInfo
    from albumcover.recipe import DEFAULT_RECIPE, CaptionRecipe

    dtype = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    tagger = Tagger.load("MTT_musicnn", "cpu", dtype=dtype)
    genre = Tagger.load("MSD_musicnn", "cpu", dtype=dtype)
    with tempfile.TemporaryDirectory(prefix="bench_analyze_") as tmp:
        song = make_song(CLIP, args.copies, Path(tmp))
        patches = song_patches(load_audio(song))
        no_category = SongInfo(title="Song", artist="Artist", date="2024")
        with_category = SongInfo(title="Song", artist="Artist", date="2024", category="rock")
        every = CaptionRecipe(genre_patches=None)
        spread = DEFAULT_RECIPE.genre_patches
        cases = {
            "one network (MTT_musicnn on the patches)": lambda: tagger.tag_patches(patches),
            f"Analyze, no category (decode + features + network + genre on {spread} patches)": (
                lambda: describe_song(song, no_category, tagger, genre)
            ),
            "Analyze, category given (decode + features + 1 network)": lambda: describe_song(
                song, with_category, tagger, genre
            ),
            "Analyze, no category, genre on every patch (format-1 recipes)": lambda: describe_song(
                song, no_category, tagger, genre, recipe=every
            ),
        }
        for fn in cases.values():
            fn()  # warm-up
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, fn in cases.items():
                results[name].append(timed(fn))
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in results.items()}
    one = best["one network (MTT_musicnn on the patches)"]
    print(
        f"Machine: {describe()}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), taggers in {tagger.dtype} ({tagger.engine}); "
        f"{len(patches)} patches, best of {args.runs} alternating rounds\n"
    )
    print("| step | wall s | CPU s | x one network (wall) | x one network (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for name, (wall, cpu) in best.items():
        print(f"| {name} | {wall:.3f} | {cpu:.3f} | {wall / one[0]:.2f}x | {cpu / one[1]:.2f}x |")


if __name__ == "__main__":
    main()
