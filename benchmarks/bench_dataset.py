"""Dataset builder throughput: tracks per second, tagging included, against --num_workers
and --batch_tracks.

    .venv/bin/python -m benchmarks.bench_dataset --tracks 24 [--num_workers 0,1,2,16]
    .venv/bin/python -m benchmarks.bench_dataset --device cuda --num_workers 1,2,4 \
        --batch_tracks 1,16 [--dtype float16]

Writes a library of N copies of the shared 30 s clip (mp3, tagged, a cover embedded; two tracks
per album) into a temp folder, builds the dataset from scratch (every track decoded and tagged)
once per ``--num_workers`` x ``--batch_tracks`` pair (workers: default 0 = in-process, 1, 2
and the core count; tracks per tagger call: default 1 and 4; each build in a fresh output folder,
so with an empty tag cache), then once more from the cache, and prints a markdown table. The
taggers are loaded before the clock starts; their load time is a separate row. CPU seconds (this
process and its finished children: the decoding workers) sit beside wall seconds because on a
shared machine the wall clock also counts other people's work.

"in taggers" is the time spent inside the taggers' ``tag_songs`` / ``tag_patches`` calls (on
CUDA synchronised before and after, so it is the GPU's busy time plus its copies) over the
build's wall time; on CUDA it is the GPU busy fraction, also given per decoding process (issue
11's target: decoding-bound, the GPU under 50 % busy per decoding core). "same rows" checks each
build's metadata against the first build's, byte for byte.
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


class TimedTagger:
    """A tagger whose calls are timed (``seconds`` accumulates); on CUDA each call is
    synchronised before and after, so the time is the device's work, not its queueing."""

    def __init__(self, tagger):
        self.tagger, self.seconds = tagger, 0.0
        self.model_name, self.labels, self.device = tagger.model_name, tagger.labels, tagger.device

    def _timed(self, call, *args, **kwargs):
        import torch

        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            if cuda:
                torch.cuda.synchronize(self.device)
            self.seconds += time.perf_counter() - start

    def tag_songs(self, songs, **kwargs):
        return self._timed(self.tagger.tag_songs, songs, **kwargs)

    def tag_patches(self, patches, **kwargs):
        return self._timed(self.tagger.tag_patches, patches, **kwargs)


def int_list(text: str, flag: str, minimum: int) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4] (duplicates dropped); ValueError naming ``flag`` otherwise."""
    try:
        values = list(dict.fromkeys(int(n) for n in text.split(",")))
    except ValueError as e:
        raise ValueError(f"{flag} wants integers like 1,2,4, got {text!r}") from e
    if any(n < minimum for n in values):
        raise ValueError(f"{flag} values must be >= {minimum}, got {text!r}")
    return values


def time_tag_calls(
    tagger, songs_per_call: list[int], rounds: int
) -> dict[int, tuple[float, float]]:
    """The caption tagger alone on the clip (10 patches): best wall and CPU seconds per track
    of one ``tag_songs`` call over ``n`` copies, for each ``n``; sizes alternate every round."""
    from albumcover.ear.audio import load_audio
    from albumcover.ear.features import song_patches

    patches = song_patches(load_audio(CLIP))
    timed = TimedTagger(tagger)  # (its synchronisation on CUDA; the clock is ours)
    timed.tag_songs([patches])  # warm-up: first-call allocations, CUDA kernels
    best: dict[int, tuple[float, float]] = {}
    for _ in range(rounds):
        for n in songs_per_call:
            start, cpu_start = time.perf_counter(), time.process_time()
            timed.tag_songs([patches] * n)
            wall, cpu = (time.perf_counter() - start) / n, (time.process_time() - cpu_start) / n
            old = best.get(n, (wall, cpu))
            best[n] = (min(old[0], wall), min(old[1], cpu))
    return best


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg decoders)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=24, help="tracks in the synthetic library")
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="taggers' device")
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="taggers' dtype (auto: Tagger.load's choice, bf16 on CPUs that run it natively)",
    )
    parser.add_argument(
        "--num_workers",
        default=f"0,1,2,{os.cpu_count()}",
        help="comma-separated decoding-process counts to time (0: decode in this process)",
    )
    parser.add_argument(
        "--batch_tracks",
        default="1,4",
        help="comma-separated tracks per tagger call to time (build_dataset --batch_tracks)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the taggers-alone table (best of)"
    )
    args = parser.parse_args()
    try:
        worker_counts = int_list(args.num_workers, "--num_workers", 0)
        batch_sizes = int_list(args.batch_tracks, "--batch_tracks", 1)
    except ValueError as e:
        parser.error(str(e))
    if args.tracks < 1:
        parser.error(f"--tracks must be at least 1, got {args.tracks}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(
            "--device cuda: torch sees no CUDA device here (torch.cuda.is_available() is "
            f"False; torch {torch.__version__}, built for CUDA {torch.version.cuda}); run it on "
            "a GPU machine, or use --device cpu"
        )

    from albumcover.ear.tagger import DEFAULT_BATCH_SIZE, Tagger
    from train.dataset.batching import CUDA_BATCH_SIZE
    from train.dataset.build import build_dataset

    dtype = None if args.dtype == "auto" else getattr(torch, args.dtype)
    # the patches per forward pass the builder itself loads its taggers with
    batch_size = CUDA_BATCH_SIZE if args.device == "cuda" else DEFAULT_BATCH_SIZE
    start = time.perf_counter()
    try:
        loaded = [
            Tagger.load(name, device=args.device, dtype=dtype, batch_size=batch_size)
            for name in ("MTT_musicnn", "MSD_musicnn")
        ]
    except ValueError as e:  # e.g. float16 on a CPU, bfloat16 where it is not native
        parser.error(str(e))
    load_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        write_library(music, args.tracks)
        runs = []
        plan = [
            (f"cold, --num_workers {n} --batch_tracks {b}", n, b, Path(tmp) / f"dataset{n}-{b}")
            for n in worker_counts
            for b in batch_sizes
        ]
        plan.append(("re-run (cache)", *plan[-1][1:]))
        first_rows = None
        for label, workers, batch, out in plan:
            taggers = [TimedTagger(t) for t in loaded]
            start, cpu_start = time.perf_counter(), cpu_seconds()
            summary = build_dataset(
                out,
                audio_dir=music,
                resolution=args.resolution,
                tagger=taggers[0],
                genre_tagger=taggers[1],
                progress=False,
                num_workers=workers,
                batch_tracks=batch,
            )
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
            assert summary.total_rows == args.tracks, summary.format()
            rows = [p.read_bytes() for p in sorted(out.glob("*/metadata.jsonl"))]
            first_rows = first_rows or rows
            busy = sum(t.seconds for t in taggers)
            runs.append((label, workers, seconds, cpu, busy, rows == first_rows, summary))
    alone = time_tag_calls(loaded[0], batch_sizes, args.rounds)

    from benchmarks.machine import describe

    device = args.device
    if device == "cuda":
        device += f" ({torch.cuda.get_device_name(0)})"
    print(
        f"\nMachine: {platform.system()} {describe()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), device {device}, taggers in {loaded[0].dtype} "
        f"({loaded[0].engine} engine, {loaded[0].batch_size} patches per forward pass)"
    )
    print(f"{args.tracks} tracks x 30 s mp3, {args.tracks // 2} albums, {args.resolution} px\n")
    busy_head = (
        "GPU busy | GPU busy per decoding process" if args.device == "cuda" else "in taggers"
    )
    columns = f"| run | wall s | tracks/s | CPU s (all processes) | {busy_head} | same rows "
    columns += "| tagged | from cache |"
    print(columns)
    print("|---" * (columns.count("|") - 1) + "|")
    blanks = "| " * (columns.count("|") - 3)
    print(f"| load MTT_musicnn + MSD_musicnn | {load_s:.2f} {blanks}|")
    for label, workers, seconds, cpu, busy, same, summary in runs:
        share = busy / seconds
        busy_cells = f"{share:.0%}"
        if args.device == "cuda":
            busy_cells += f" | {share / max(1, workers):.0%}"
        print(
            f"| {label} | {seconds:.2f} | {args.tracks / seconds:.2f} | {cpu:.1f} | "
            f"{busy_cells} | {'yes' if same else 'NO'} | {summary.tagged} | {summary.cached} |"
        )
    print(
        f"\nMTT_musicnn alone, tag_songs over N copies of the 30 s clip, best of {args.rounds}:\n"
    )
    print("| tracks per call | wall s per track | CPU s per track (this process) |")
    print("|---|---|---|")
    for n, (wall, cpu) in alone.items():
        print(f"| {n} | {wall:.3f} | {cpu:.3f} |")


if __name__ == "__main__":
    main()
