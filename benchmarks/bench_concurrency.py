"""Two visitors at once on a CPU: an Analyze (both Musicnn taggers on a song) and a Generate (one
cover on the CPU default: SD 1.5 architecture, random weights, 2-step path + TAESD) run in two
threads of one process, as the app's handlers do, against each alone, in the same run.

Every request runs in a thread of its own, started for it, as gradio's worker threads run the
app's handlers (a thread started after an Analyze is where an earlier tagger left torch on one
core). Three ways are timed: each request alone; both at once, free (what two gradio events with
their own concurrency groups do: the taggers' threads and torch's OpenMP threads on the same
cores); both at once, serialised (what one shared concurrency group for the CPU-heavy events
does). The total of two should not exceed twice one (issue 19, item 5).

    .venv/bin/python -m benchmarks.bench_concurrency --threads 2 --rounds 2 --engine openvino
    .venv/bin/python -m benchmarks.bench_concurrency --tiny      # the code path only
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"
PROMPT = "cover album of rock song, titled Test, by Someone, with tags rock, guitar"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of the three ways (best kept)")
    p.add_argument("--tiny", action="store_true", help="a tiny random SD instead of full size")
    p.add_argument("--audio", default=str(CLIP), help="the song Analyze hears")
    p.add_argument("--engine", default="torch", help="the denoiser's: torch, openvino or auto")
    return p.parse_args(argv)


def main(args) -> None:
    import torch

    from albumcover.paint.generator import CoverGenerator, FastPath
    from albumcover.pipeline import describe_song
    from albumcover.prompts import SongInfo
    from albumcover.recipe import DEFAULT_RECIPE
    from benchmarks.machine import describe
    from space.models import load_taggers
    from tests.tiny_models import save_full_size_sd, save_tiny_lora, save_tiny_sd

    if args.threads:
        torch.set_num_threads(args.threads)
    tagger, genre_tagger = load_taggers(DEFAULT_RECIPE)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sd"
        (save_tiny_sd if args.tiny else save_full_size_sd)(folder)
        lora = str(save_tiny_lora(folder, Path(tmp) / "lora"))
        taesd = Path(tmp) / "taesd"
        if not args.tiny:
            from diffusers import AutoencoderTiny

            AutoencoderTiny().save_pretrained(taesd)
        fast = FastPath(lora=lora, steps=2, vae=None if args.tiny else str(taesd))
        generator = CoverGenerator.from_pretrained(
            folder, device="cpu", fast=fast, engine=args.engine, engine_cache=Path(tmp) / "ov"
        )
    size = 64 if args.tiny else 512
    settings = generator.default_settings(width=size, height=size, seed=0)
    song = SongInfo(title="Test", category="")

    def analyze():
        describe_song(args.audio, song, tagger, genre_tagger, recipe=DEFAULT_RECIPE)

    def generate():
        generator.generate(PROMPT, settings)

    lock = threading.Lock()  # what one shared gradio concurrency group does

    def serialised(fn):
        def run():
            with lock:
                fn()

        return run

    def together(a, b) -> float:
        threads = [threading.Thread(target=f) for f in (a, b)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    def alone(fn) -> float:
        thread = threading.Thread(target=fn)
        start = time.perf_counter()
        thread.start()
        thread.join()
        return time.perf_counter() - start

    analyze(), generate()  # warm-up: sessions, kernels, allocator
    best = {}
    for _ in range(args.rounds):
        for name, fn in (
            ("Analyze alone", lambda: alone(analyze)),
            ("Generate alone", lambda: alone(generate)),
            ("both at once, free", lambda: together(analyze, generate)),
            (
                "both at once, one shared group",
                lambda: together(*map(serialised, (analyze, generate))),
            ),
        ):
            best[name] = min(best.get(name, float("inf")), fn())
    one = best["Analyze alone"] + best["Generate alone"]
    model = "tiny random SD, 64 px" if args.tiny else "SD 1.5 architecture, random weights, 512 px"
    print(f"\n{describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"{model}, {generator.dtype}, 2 steps + tiny decoder, denoiser in {generator.engine}; "
        f"best of {args.rounds} rounds\n"
    )
    print("| requests | wall s | vs the two alone, summed |\n|---|---:|---:|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {seconds / one:.2f} |")


if __name__ == "__main__":
    main(parse_args())
