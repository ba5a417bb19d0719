"""Tagging speed and memory: albumcover's PyTorch Musicnn against the original TensorFlow one.

On a 3-minute mp3 made from the shared clip (6 copies, re-encoded once with ffmpeg), measures
per song, warm (median of --runs): decode, features, network and total; then a fresh process
(imports + weights + one song: what a CLI call or a cold Space pays) with its peak RSS. With
--reference-python (a side environment with the original package and TensorFlow, see
benchmarks/README.md) it measures, in the same run, the original's stock extractor() per song,
one persistent TF session, a fresh process, and whether the top-10 tags agree. Prints a
markdown table.

    .venv/bin/python -m benchmarks.bench_tagger [--bf16] [--reference-python PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"
REFERENCE_SCRIPT = Path(__file__).with_name("reference_musicnn.py")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=CLIP, help="clip to repeat into a song")
    parser.add_argument("--copies", type=int, default=6, help="copies of the clip (6 = 3 min)")
    parser.add_argument("--model", default="MTT_musicnn")
    parser.add_argument("--runs", type=int, default=5, help="timed warm runs (median)")
    parser.add_argument("--bf16", action="store_true", help="also time bfloat16 (if supported)")
    parser.add_argument("--reference-python", type=Path, help="python of the TF side venv")
    parser.add_argument("--reference-runs", type=int, default=3)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds (ours fp32 / ours bf16 / torch conv2d / TF) of the network "
        "floor table; 0 skips it",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for both torch and TensorFlow (default: each library's own)",
    )
    parser.add_argument(
        "--floor-only",
        action="store_true",
        help="only the GEMM peaks and the alternating network table (no per-song stages)",
    )
    # internal: one song in this fresh process, JSON to the given file
    parser.add_argument(
        "--fresh", nargs=3, metavar=("SONG", "DTYPE", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0 (0: the libraries' default)")
    if args.fresh:
        return args
    if not args.audio.is_file():
        parser.error(f"--audio {args.audio} is not a file")
    if args.copies < 1 or args.runs < 1 or args.reference_runs < 1:
        parser.error("--copies, --runs and --reference-runs must be >= 1")
    if args.reference_python and not os.access(args.reference_python, os.X_OK):
        parser.error(f"--reference-python {args.reference_python} is not an executable")
    if shutil.which("ffmpeg") is None:
        parser.error("ffmpeg is needed to build the 3-minute test song")
    return args


def fresh_process(args) -> None:
    """Runs in a new interpreter: everything a first call pays, timed from the first import."""
    song, dtype, out = args.fresh
    start = time.perf_counter()
    import torch

    from albumcover.ear.tagger import Tagger

    if args.threads:
        torch.set_num_threads(args.threads)
    imported = time.perf_counter()
    tagger = Tagger.load(args.model, "cpu", **dtype_kwargs(dtype))
    loaded = time.perf_counter()
    result = tagger.tag(song, top=10)
    done = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "import_s": imported - start,
        "load_s": loaded - imported,
        "tag_s": done - loaded,
        "total_s": done - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "top10": list(result.tags),
    }
    Path(out).write_text(json.dumps(report))


def dtype_kwargs(dtype: str) -> dict:
    import torch

    # explicit: Tagger.load picks bf16 by itself on CPUs that have it
    return {"dtype": torch.float32 if dtype == "fp32" else torch.bfloat16}


def bf16_supported() -> bool:
    import torch

    from albumcover.ear.tagger import bf16_supported as supported

    return supported(torch.device("cpu"))


def make_song(clip: Path, copies: int, folder: Path) -> Path:
    """The clip repeated `copies` times, re-encoded once (a plain stream copy would splice the
    mp3 bit reservoir and leave decode errors at each seam)."""
    song = folder / f"song_{copies}x.mp3"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", str(copies - 1)]
    cmd += ["-i", str(clip), "-c:a", "libmp3lame", "-b:a", "128k", str(song)]
    subprocess.run(cmd, check=True)
    return song


def median_time(fn, runs: int):
    """(median wall s, median CPU s of all this process's threads, last result), after a warm-up.

    CPU time is the steadier figure on a shared machine: waiting for a core is not counted.
    """
    result = fn()
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return (statistics.median(walls), statistics.median(cpus)), result


def measure_warm(song: Path, model: str, dtype: str, runs: int, threads: int) -> dict:
    import numpy as np
    import torch

    from albumcover.ear.audio import load_audio
    from albumcover.ear.features import log_mel_spectrogram, make_patches
    from albumcover.ear.tagger import Tagger

    if threads:
        torch.set_num_threads(threads)
    tagger = Tagger.load(model, "cpu", **dtype_kwargs(dtype))
    decode_s, audio = median_time(lambda: load_audio(song), runs)
    features_s, patches = median_time(lambda: make_patches(log_mel_spectrogram(audio)), runs)
    network_s, _ = median_time(lambda: tagger.tag_patches(patches), runs)
    total_s, result = median_time(lambda: tagger.tag(song, top=10), runs)
    return {
        "decode_s": decode_s,
        "features_s": features_s,
        "network_s": network_s,
        "total_s": total_s,
        "patches": patches.astype(np.float32),
        "taggram": result.taggram,
        "labels": list(result.labels),
        "top10": list(result.tags),
        "seconds": len(audio) / 16000,
        "engine": tagger.engine,
    }


def measure_fresh(song: Path, dtype: str, args, folder: Path) -> dict:
    out = folder / f"fresh_{dtype}.json"
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--fresh", str(song), dtype, str(out)]
    cmd += ["--model", args.model, "--threads", str(args.threads)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    report = json.loads(out.read_text())
    report["wall_s"] = time.perf_counter() - start  # interpreter start-up included
    return report


def run_reference(args, song: Path, patches_file: Path, folder: Path) -> dict:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    base = [str(args.reference_python), str(REFERENCE_SCRIPT)]
    common = ["--audio", str(song), "--model", args.model, "--threads", str(args.threads)]
    once_out, warm_out = folder / "ref_once.json", folder / "ref_warm.json"
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    start = time.perf_counter()
    try:
        subprocess.run(base + ["once", *common, "--out", str(once_out)], **quiet)
        once_wall = time.perf_counter() - start
        warm = ["warm", *common, "--runs", str(args.reference_runs), "--patches", str(patches_file)]
        subprocess.run(base + warm + ["--out", str(warm_out)], **quiet)
    except subprocess.CalledProcessError as e:
        tail = e.stderr.decode("utf-8", "replace")[-2000:]
        sys.exit(f"the reference run failed ({' '.join(map(str, e.cmd[:3]))} ...):\n{tail}")
    once = json.loads(once_out.read_text())
    once["wall_s"] = once_wall
    return {"once": once, **json.loads(warm_out.read_text())}


def machine(threads: int) -> str:
    import torch

    from benchmarks.machine import describe

    if threads:
        torch.set_num_threads(threads)
    return f"{describe()}; torch {torch.__version__} ({torch.get_num_threads()} threads)"


def agreement(ours: list[str], theirs: list[str] | None) -> str:
    if theirs is None:
        return "n/a (their taggram is NaN)"
    same_set = len(set(ours) & set(theirs))
    order = "same order" if ours == theirs else "order differs"
    return f"{same_set}/10 shared, {order}"


def main(args) -> None:
    import numpy as np

    rows, fresh = {}, {}
    dtypes = ["fp32"]
    if args.bf16:
        if bf16_supported():
            dtypes.append("bf16")
        else:
            print("note: this CPU has no native bfloat16 (avx512_bf16/amx): no bf16 column\n")
    with tempfile.TemporaryDirectory(prefix="bench_tagger_") as tmp:
        folder = Path(tmp)
        song = make_song(args.audio, args.copies, folder)
        if args.floor_only:
            from albumcover.ear.audio import load_audio
            from albumcover.ear.features import song_patches

            print(f"Machine: {machine(args.threads)}")
            floor_table(args, song_patches(load_audio(song)), args.reference_python is not None)
            return
        for dtype in dtypes:
            fresh[dtype] = measure_fresh(song, dtype, args, folder)
            rows[dtype] = measure_warm(song, args.model, dtype, args.runs, args.threads)
        reference = None
        if args.reference_python:
            patches_file = folder / "patches.npy"
            np.save(patches_file, rows["fp32"]["patches"])
            reference = run_reference(args, song, patches_file, folder)

    ours = rows["fp32"]
    print(f"Machine: {machine(args.threads)}")
    print(f"Song: {ours['seconds']:.1f} s mp3 ({args.copies} x the shared clip), {args.model}; ")
    print(f"warm figures are medians of {args.runs} runs after a warm-up.\n")
    heads = [f"ours {d} ({rows[d]['engine']})" for d in dtypes]
    print("| stage | " + " | ".join(f"{h} wall s | {h} CPU s" for h in heads) + " |")
    print("|---|" + "---:|---:|" * len(dtypes))
    for key, name in (
        ("decode_s", "decode"),
        ("features_s", "features"),
        ("network_s", "network"),
        ("total_s", "**total, warm**"),
    ):
        cells = " | ".join(f"{rows[d][key][0]:.3f} | {rows[d][key][1]:.3f}" for d in dtypes)
        print(f"| {name} | {cells} |")
    cells = " | ".join(f"{fresh[d]['wall_s']:.2f} | {fresh[d]['cpu_s']:.2f}" for d in dtypes)
    print(f"| fresh process, start to exit | {cells} |")
    parts = (("import_s", "  imports"), ("load_s", "  weights"), ("tag_s", "  first song"))
    for key, name in parts:
        cells = " | ".join(f"{fresh[d][key]:.2f} | " for d in dtypes)
        print(f"| {name} | {cells} |")
    rss = " | ".join(f"{fresh[d]['peak_rss_mb']:.0f} MB | " for d in dtypes)
    print(f"| fresh process, peak RSS | {rss} |")
    print(f"\nTop-10 (ours, fp32): {', '.join(ours['top10'])}")
    if "bf16" in rows:
        print(f"Top-10 (ours, bf16): {agreement(ours['top10'], rows['bf16']['top10'])} with fp32")
    if args.rounds:
        floor_table(args, ours["patches"], reference is not None)
    if reference is None:
        return

    same = np.asarray(reference["taggram_same_patches"], dtype=np.float32)
    once, mine_once = reference["once"], fresh["fp32"]
    print("\n| per song | theirs wall s | theirs CPU s | speed-up, wall | speed-up, CPU |")
    print("|---|---:|---:|---:|---:|")
    for name, theirs, mine in (
        ("stock extractor(), warm", reference["stock_s"], ours["total_s"]),
        ("one persistent TF session", reference["persistent_s"], ours["total_s"]),
        (
            "fresh process (imports + one song)",
            (once["wall_s"], once["cpu_s"]),
            (mine_once["wall_s"], mine_once["cpu_s"]),
        ),
    ):
        print(
            f"| {name} | {theirs[0]:.2f} | {theirs[1]:.2f} | "
            f"{theirs[0] / mine[0]:.2f}x | {theirs[1] / mine[1]:.2f}x |"
        )
    print(
        f"| fresh process, peak RSS | {once['peak_rss_mb']:.0f} MB | | "
        f"ours {mine_once['peak_rss_mb']:.0f} MB | |"
    )
    print(
        f"\nSame patches through both networks: max |taggram difference| "
        f"{np.abs(same - ours['taggram']).max():.2e}; top-10 "
        f"{agreement(ours['top10'], reference['top10_same_patches'])}."
    )
    print(
        f"Their end to end (librosa decode, float32 log): top-10 "
        f"{agreement(ours['top10'], reference['top10_end_to_end'])} with ours."
    )
    print(
        f"Their stock extractor() (float16 log): top-10 "
        f"{agreement(ours['top10'], once['top10'])} with ours."
    )


def network_flop(model: str, patches) -> float:
    """Multiply-adds x 2 of ``model``'s network on ``patches`` (counted by torch, ~2.8 GFLOP
    per 3 s Musicnn patch, 99.98 % convolutions)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from albumcover.ear.musicnn import build_model

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        build_model(model)(torch.from_numpy(np.array(patches[:1], dtype=np.float32)))
    return counter.get_total_flops() * len(patches)


def tf_network(args, patches_file: Path, out: Path) -> tuple[float, float]:
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("PYTHONPATH", None)
    cmd = [str(args.reference_python), str(REFERENCE_SCRIPT), "network", "--audio", "-"]
    cmd += ["--model", args.model, "--threads", str(args.threads), "--runs", str(args.runs)]
    cmd += ["--patches", str(patches_file), "--out", str(out)]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return tuple(json.loads(out.read_text())["network_s"])


def best_of(fn, runs: int) -> tuple[float, float]:
    """(best wall s, best CPU s) of ``runs`` calls after a warm-up."""
    fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def floor_table(args, patches, with_reference: bool) -> None:
    """The network against the machine's GEMM floor and the original, in alternating rounds.

    Each round times, one after the other on the same patches: ours in fp32 (the default
    engine: ONNX Runtime where installed; and the sgemm front end), ours in bf16 (where
    native), the port's plain torch network (conv2d through oneDNN, what the tagger ran
    before) and one persistent TF session; each figure is the best over rounds (min of wall,
    min of CPU), so a neighbour's burst of load hurts all sides alike.
    """
    import numpy as np
    import torch

    from albumcover.ear.tagger import Tagger
    from benchmarks.gemm_peak import all_peaks, best

    if args.threads:
        torch.set_num_threads(args.threads)
    native_bf16 = bf16_supported()
    fp32 = Tagger.load(args.model, "cpu", dtype=torch.float32)  # the default engine
    paths = {f"ours fp32 ({fp32.engine}, the default)": fp32}
    if fp32.engine != "gemm":
        gemm = Tagger.load(args.model, "cpu", dtype=torch.float32, engine="gemm")
        paths["ours fp32 (sgemm front end)"] = gemm
    if native_bf16:
        paths["ours bf16"] = Tagger.load(args.model, "cpu", dtype=torch.bfloat16)
    conv = fp32.network

    def torch_conv():
        with torch.inference_mode():
            for start in range(0, len(patches), 8):
                conv(torch.from_numpy(patches[start : start + 8]))

    flop = network_flop(args.model, patches)
    times: dict[str, list[tuple[float, float]]] = {}
    peaks = all_peaks(args.threads, native_bf16)
    with tempfile.TemporaryDirectory(prefix="bench_floor_") as tmp:
        patches_file = Path(tmp) / "patches.npy"
        np.save(patches_file, patches)
        for _ in range(args.rounds):
            for name, tagger in paths.items():
                times.setdefault(name, []).append(
                    best_of(lambda t=tagger: t.tag_patches(patches), args.runs)
                )
            times.setdefault("port before: torch conv2d (oneDNN) fp32", []).append(
                best_of(torch_conv, args.runs)
            )
            if with_reference:
                times.setdefault("original: one persistent TF session", []).append(
                    tf_network(args, patches_file, Path(tmp) / "tf.json")
                )
    for name, rate in all_peaks(args.threads, native_bf16).items():  # again, after: keep the best
        peaks[name] = (max(peaks[name][0], rate[0]), max(peaks[name][1], rate[1]))
    best_times = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in times.items()}

    print(f"\nMeasured GEMM peaks ({SIZE_NOTE}; best before/after the rounds):\n")
    print("| GEMM | GFLOP/s wall | GFLOP/s per CPU-second |")
    print("|---|---:|---:|")
    for name, (wall, cpu) in peaks.items():
        print(f"| {name} | {wall:.0f} | {cpu:.0f} |")
    print(
        f"\nNetwork on {len(patches)} patches ({flop / 1e9:.1f} GFLOP), best of "
        f"{args.rounds} alternating rounds x {args.runs} runs. Floor = GFLOP / best GEMM rate "
        "of that precision; fraction = floor / time (wall, and per CPU-second).\n"
    )
    print(
        "| network | wall s | CPU s | GFLOP/s wall | floor wall s | of peak, wall "
        "| of peak, CPU | vs TF, wall | vs TF, CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    tf = best_times.get("original: one persistent TF session")
    for name, (wall, cpu) in best_times.items():
        kind = "bf16" if "bf16" in name else "fp32"
        peak_name, peak_wall, peak_cpu = best(peaks, kind)
        floor_wall, floor_cpu = flop / peak_wall / 1e9, flop / peak_cpu / 1e9
        versus = f"{tf[0] / wall:.2f}x | {tf[1] / cpu:.2f}x" if tf else "| "
        print(
            f"| {name} | {wall:.3f} | {cpu:.3f} | {flop / wall / 1e9:.0f} | {floor_wall:.3f} "
            f"| {floor_wall / wall:.0%} | {floor_cpu / cpu:.0%} | {versus} |"
        )
    print(
        "\n(floor: fp32 from the fastest fp32 GEMM above, bf16 from the bf16 matmul; 'of peak, "
        "CPU' compares CPU-seconds, the steadier figure when other jobs share the cores)"
    )


SIZE_NOTE = "2048 x 2048 x 2048 products, 2n^3 flop"


if __name__ == "__main__":
    cli = parse_args()
    if cli.fresh:
        fresh_process(cli)
    else:
        main(cli)
