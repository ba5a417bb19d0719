"""A trial of other inference engines for the fp32 Musicnn network (issue 11, item 1).

On the 60 patches of a 3-minute song (the shared clip x 6), in one process, in alternating rounds
(each contender once per round, best of --runs after a warm-up; the best over rounds is kept, so a
neighbour's burst of load hurts every side alike; the GEMM peaks are measured each round too),
against the machine's measured GEMM peaks and the original TensorFlow Musicnn with one persistent
session (--reference-python, a subprocess per round):

- ours: the "gemm" engine (``albumcover.ear.frontend``: the five front-end convs as im2col sgemm
  through NumPy's OpenBLAS, one patch per thread; mid- and back-end in torch), and its bf16 path;
- torch.compile (inductor) of the mid-/back-end behind our front end, and of the whole network;
- ONNX Runtime (CPU EP) on the network exported by ``torch.onnx.export`` with a dynamic batch:
  optimization level ALL (sequential and parallel execution), BASIC, and one patch per thread;
- OpenVINO (CPU plugin) on the same ONNX file and on ``openvino.convert_model`` of the torch
  module, with INFERENCE_PRECISION_HINT forced to f32 (it defaults to bf16 on bf16 CPUs), one
  request for all patches or two single-thread streams; bf16 reported separately.

One-time costs: the export in this process; what a fresh process pays (engine import, session or
compile, the first call's extra) in child processes, torch.compile with a cold and a warm
on-disk cache. Engines that are not installed are skipped with a line. Run with OpenBLAS's
overrides unset so NumPy's OpenBLAS picks its own kernel (as bench_tagger's peak does):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python -m benchmarks.trial_engines \\
        --reference-python /work/wt/tagger/.tfvenv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
BATCH = 8  # albumcover.ear.tagger.DEFAULT_BATCH_SIZE (not imported here: torch loads late)


@dataclass
class Contender:
    """One way to run the whole network: ``run()`` -> taggram (n, 50) float32."""

    name: str
    run: Callable
    precision: str = "fp32"
    one_time: str = ""
    part: bool = False  # a piece of ours (front end / mid-back end), not the whole network
    diff: float = float("nan")
    times: list = field(default_factory=list)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MTT_musicnn")
    parser.add_argument("--copies", type=int, default=6, help="copies of the clip (6 = 3 min)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--runs", type=int, default=3, help="timed calls per round (best)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--reference-python", type=Path, help="python of the TF side venv")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    # internal: what a fresh process pays for one engine, JSON into the folder
    parser.add_argument("--fresh", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.rounds, args.runs, args.threads, args.copies) < 1:
        parser.error("--rounds, --runs, --threads and --copies must be >= 1")
    if args.reference_python and not os.access(args.reference_python, os.X_OK):
        parser.error(f"--reference-python {args.reference_python} is not an executable")
    return args


def sigmoid(logits):
    """The taggram from logits, as ``Tagger.tag_patches`` computes it."""
    import numpy as np

    return (1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))).astype(np.float32)


def installed(*modules: str) -> bool:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        print(f"Skipped: {', '.join(missing)} not installed (pip install {' '.join(missing)})")
    return not missing


def timed(fn, runs: int):
    """(best wall s, best CPU s of the process) of ``runs`` calls after a warm-up; last output."""
    out = fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return (wall, cpu), out


def first_call_extra(fn, runs: int = 2) -> tuple[float, float]:
    """(first call wall s, its extra over the best warm call): what compiling on first use costs."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    (warm, _), _ = timed(fn, runs)
    return first, first - warm


# --- contenders ----------------------------------------------------------------------------


def ours(args, patches) -> tuple[object, list[Contender]]:
    import torch

    from albumcover.ear.tagger import Tagger, bf16_supported

    tagger = Tagger.load(args.model, "cpu", dtype=torch.float32)
    found = [
        Contender(
            "ours: gemm engine (OpenBLAS front end + torch)",
            lambda: tagger.tag_patches(patches).taggram,
        )
    ]
    if bf16_supported(torch.device("cpu")):
        bf16 = Tagger.load(args.model, "cpu", dtype=torch.bfloat16)
        found.append(
            Contender("ours: bf16 path", lambda: bf16.tag_patches(patches).taggram, "bf16")
        )
    return tagger, found


def front_end(tagger, threads: int):
    """Our front end alone, as ``Tagger._run_gemm`` runs it: (B, 187, 96) -> (B, 561, 187)."""
    import torch

    from albumcover.ear.frontend import GemmFrontend

    gemm, network = GemmFrontend(tagger.network), tagger.network

    def run(patches):
        with torch.inference_mode():
            x = network.input_bn(torch.from_numpy(patches).unsqueeze(1)).squeeze(1).numpy()
            return torch.from_numpy(gemm(x, threads=threads))

    return run


def compiled(args, tagger, patches, folder: Path) -> list[Contender]:
    import torch

    network, front = tagger.network, front_end(tagger, args.threads)
    pooled = front(patches)
    back = torch.compile(network.forward_pooled, dynamic=True)

    def eager_back():
        with torch.inference_mode():
            return network.forward_pooled(pooled)

    def compiled_back():
        with torch.inference_mode():
            return back(pooled)

    def with_compiled_back():
        with torch.inference_mode():
            return sigmoid(back(front(patches)).numpy())

    first, extra = first_call_extra(compiled_back)
    cold, warm = fresh_costs(args, "compile", folder, 2)
    note = (
        f"first call {first:.1f} s here; fresh process: first call {cold['first_extra_s']:+.1f} s "
        f"(cold cache), {warm['first_extra_s']:+.1f} s (warm on-disk cache); "
        f"peak RSS {warm['peak_rss_mb']:.0f} MB"
    )
    whole = torch.compile(network, dynamic=True)

    def whole_model():  # in the Tagger's batches, as its torch engine runs
        with torch.inference_mode():
            chunks = range(0, len(patches), BATCH)
            return sigmoid(
                torch.cat([whole(torch.from_numpy(patches[i : i + BATCH])) for i in chunks])
            )

    whole_first, whole_extra = first_call_extra(whole_model)
    return [
        Contender("torch.compile: our front end + compiled mid/back end", with_compiled_back,
                  one_time=note),
        Contender(f"torch.compile: whole network (convs via oneDNN), batches of {BATCH}",
                  whole_model,
                  one_time=f"first call {whole_first:.1f} s here ({whole_extra:+.1f} s)"),
        Contender("part: our front end alone (input BN + im2col sgemm + max)",
                  lambda: front(patches), part=True),
        Contender("part: mid/back end, eager torch", eager_back, part=True),
        Contender("part: mid/back end, torch.compile", compiled_back, part=True,
                  one_time="as above"),
    ]  # fmt: skip


def export_onnx(network, patches, folder: Path) -> tuple[Path, float]:
    import torch

    path = folder / "musicnn.onnx"
    batch = torch.export.Dim("batch", min=1, max=4096)
    start = time.perf_counter()
    with torch.inference_mode():
        torch.onnx.export(
            network,
            (torch.from_numpy(patches[:8]),),
            str(path),
            input_names=["x"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path, time.perf_counter() - start


def ort_session(path: Path, threads: int, level: str = "ALL", parallel: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads if parallel else 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.log_severity_level = 3  # the NCHWc-layout notice is not an error
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_contenders(args, path: Path, patches, cost: str) -> list[Contender]:
    from concurrent.futures import ThreadPoolExecutor

    threads = args.threads
    found = []
    for label, level, parallel in (
        (f"level ALL, sequential, batches of {BATCH}", "ALL", False),
        (f"level ALL, parallel execution, batches of {BATCH}", "ALL", True),
        (f"level BASIC, sequential, batches of {BATCH}", "BASIC", False),
    ):
        session = ort_session(path, threads, level, parallel)
        found.append(
            Contender(
                f"ONNX Runtime {ort_version()}: {label}, {threads} threads",
                lambda s=session: sigmoid(batched(s, patches)),
                one_time=cost,
            )
        )
    single = ort_session(path, 1)
    pool = ThreadPoolExecutor(threads)  # ORT releases the GIL in run(); lives to the end
    found.append(
        Contender(
            f"ONNX Runtime {ort_version()}: level ALL, 1 thread per patch x {threads}",
            lambda: sigmoid(per_patch(single, patches, pool)),
            one_time=cost,
        )
    )
    return found


def batched(session, patches):
    """Logits of ``patches`` in batches of the Tagger's size (all 60 at once would hold every
    conv's full (B, C, T, F) output, ~0.5 GB)."""
    import numpy as np

    chunks = range(0, len(patches), BATCH)
    return np.concatenate([session.run(None, {"x": patches[i : i + BATCH]})[0] for i in chunks])


def per_patch(session, patches, pool):
    """Logits, one patch per ``session.run``, spread over ``pool``'s threads."""
    import numpy as np

    logits = pool.map(
        lambda i: session.run(None, {"x": patches[i : i + 1]})[0], range(len(patches))
    )
    return np.concatenate(list(logits))


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def ov_compile(model, threads: int, precision: str, streams: int = 1):
    import openvino as ov

    config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads}
    config.update({"NUM_STREAMS": streams} if streams > 1 else {"PERFORMANCE_HINT": "LATENCY"})
    compiled_model = ov.Core().compile_model(model, "CPU", config)
    actual = str(compiled_model.get_property("INFERENCE_PRECISION_HINT"))
    if actual != {"f32": "<Type: 'float32'>", "bf16": "<Type: 'bfloat16'>"}[precision]:
        raise RuntimeError(f"OpenVINO compiled in {actual}, not {precision}")
    return compiled_model


def ov_contenders(args, onnx_path: Path | None, network, patches, cost: str) -> list[Contender]:
    import numpy as np
    import openvino as ov
    import torch

    version = ov.get_version().split("-")[0]
    start = time.perf_counter()
    converted = ov.convert_model(
        network,
        example_input=torch.from_numpy(patches[:8]),
        input=[ov.PartialShape([-1, patches.shape[1], patches.shape[2]])],
    )
    convert_s = time.perf_counter() - start
    sources = [("convert_model(torch)", converted, f"convert_model {convert_s:.1f} s; {cost}")]
    if onnx_path is not None:
        sources.insert(0, ("ONNX file", ov.Core().read_model(str(onnx_path)), cost))
    found = []
    for source, model, note in sources:
        request = ov_compile(model, args.threads, "f32").create_infer_request()
        found.append(
            Contender(
                f"OpenVINO {version}: {source}, f32, 1 request, {args.threads} threads",
                lambda r=request: sigmoid(r.infer({0: patches})[0]),
                one_time=note,
            )
        )
    model, note = sources[0][1], sources[0][2]
    streams = ov_compile(model, args.threads, "f32", streams=args.threads)
    queue = ov.AsyncInferQueue(streams, args.threads)
    parts = np.array_split(np.arange(len(patches)), args.threads)

    def two_streams():
        results = [None] * len(parts)

        def done(request, i):
            results[i] = request.get_output_tensor(0).data.copy()

        queue.set_callback(done)
        for i, rows in enumerate(parts):
            queue.start_async({0: patches[rows]}, i)
        queue.wait_all()
        return sigmoid(np.concatenate(results))

    found.append(
        Contender(
            f"OpenVINO {version}: {sources[0][0]}, f32, {args.threads} streams x 1 thread",
            two_streams,
            one_time=note,
        )
    )
    from albumcover.ear.tagger import bf16_supported

    if bf16_supported(torch.device("cpu")):
        request = ov_compile(model, args.threads, "bf16").create_infer_request()
        found.append(
            Contender(
                f"OpenVINO {version}: {sources[0][0]}, bf16 (its default here), 1 request",
                lambda: sigmoid(request.infer({0: patches})[0]),
                precision="bf16",
                one_time=note,
            )
        )
    return found


# --- what a fresh process pays -------------------------------------------------------------


def fresh_costs(args, engine: str, folder: Path, times: int = 1) -> list[dict]:
    """Run ``--fresh engine folder`` ``times`` times in new interpreters (the same inductor
    cache folder each time: the first is cold, the next ones warm); their JSON reports."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(folder / f"inductor_{engine}"))
    reports = []
    for _ in range(times):
        cmd = [sys.executable, "-m", "benchmarks.trial_engines", "--fresh", engine, str(folder)]
        cmd += ["--model", args.model, "--threads", str(args.threads)]
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
        reports.append(json.loads((folder / f"fresh_{engine}.json").read_text()))
    return reports


def fresh(args) -> None:
    """In a new interpreter: import the engine, build its session, first and warm call."""
    engine, folder = args.fresh[0], Path(args.fresh[1])
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    patches = np.load(folder / "patches.npy")
    start = time.perf_counter()
    if engine == "ours":
        from albumcover.ear.tagger import Tagger

        imported = time.perf_counter()
        tagger = Tagger.load(args.model, "cpu", dtype=torch.float32)

        def call():
            return tagger.tag_patches(patches)

    elif engine == "onnxruntime":  # the fastest layout of the trial: one patch per thread
        from concurrent.futures import ThreadPoolExecutor

        import onnxruntime  # noqa: F401

        imported = time.perf_counter()
        session = ort_session(folder / "musicnn.onnx", 1)
        pool = ThreadPoolExecutor(args.threads)

        def call():
            return per_patch(session, patches, pool)

    elif engine == "openvino":
        import openvino as ov

        imported = time.perf_counter()
        request = ov_compile(
            ov.Core().read_model(str(folder / "musicnn.onnx")), args.threads, "f32"
        ).create_infer_request()

        def call():
            return request.infer({0: patches})

    elif engine == "compile":
        from albumcover.ear.tagger import Tagger

        imported = time.perf_counter()
        tagger = Tagger.load(args.model, "cpu", dtype=torch.float32)
        pooled = front_end(tagger, args.threads)(patches)
        back = torch.compile(tagger.network.forward_pooled, dynamic=True)

        def call():
            with torch.inference_mode():
                return back(pooled)

    else:
        raise ValueError(f"unknown engine {engine!r}")
    ready = time.perf_counter()
    first, extra = first_call_extra(call)
    report = {"import_s": imported - start, "setup_s": ready - imported}
    report.update(first_s=first, first_extra_s=extra)
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB
    (folder / f"fresh_{engine}.json").write_text(json.dumps(report))


# --- the trial ------------------------------------------------------------------------------


def load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main(args) -> None:
    import numpy as np
    import torch

    from albumcover.ear.audio import load_audio
    from albumcover.ear.features import song_patches
    from benchmarks.bench_tagger import CLIP, SIZE_NOTE, make_song, network_flop, tf_network
    from benchmarks.gemm_peak import all_peaks, best
    from benchmarks.machine import describe

    torch.set_num_threads(args.threads)
    overrides = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    print(f"Machine: {describe()}")
    print(f"threads {args.threads}; OpenBLAS overrides in this process: {overrides or 'none'}")
    start_load = load()
    with tempfile.TemporaryDirectory(prefix="trial_engines_") as tmp:
        folder = Path(tmp)
        patches = song_patches(load_audio(make_song(CLIP, args.copies, folder))).astype(np.float32)
        np.save(folder / "patches.npy", patches)
        tagger, contenders = ours(args, patches)
        reference = contenders[0].run()
        (cost,) = fresh_costs(args, "ours", folder)
        contenders[0].one_time = (
            f"fresh process: weights {cost['setup_s']:.2f} s, first call "
            f"{cost['first_extra_s']:+.2f} s, peak RSS {cost['peak_rss_mb']:.0f} MB"
        )
        if not args.no_compile:
            contenders += compiled(args, tagger, patches, folder)
        onnx_path = None
        if installed("onnx", "onnxscript"):
            onnx_path, export_s = export_onnx(tagger.network, patches, folder)
            export_note = (
                f"export {export_s:.1f} s once ({onnx_path.stat().st_size / 2**20:.1f} MB)"
            )
        if onnx_path is not None and installed("onnxruntime"):
            (cost,) = fresh_costs(args, "onnxruntime", folder)
            note = (
                f"{export_note}; fresh process: import {cost['import_s']:.2f} s, session "
                f"{cost['setup_s']:.2f} s, first call {cost['first_extra_s']:+.2f} s, "
                f"peak RSS {cost['peak_rss_mb']:.0f} MB (1 patch per thread)"
            )
            contenders += ort_contenders(args, onnx_path, patches, note)
        if installed("openvino"):
            note = export_note if onnx_path is not None else ""
            if onnx_path is not None:
                (cost,) = fresh_costs(args, "openvino", folder)
                note += (
                    f"; fresh process: import {cost['import_s']:.2f} s, read + compile "
                    f"{cost['setup_s']:.2f} s, first call {cost['first_extra_s']:+.2f} s, "
                    f"peak RSS {cost['peak_rss_mb']:.0f} MB (1 request, all patches)"
                )
            contenders += ov_contenders(args, onnx_path, tagger.network, patches, note)
        for c in contenders:
            if not c.part:
                c.diff = float(np.abs(c.run() - reference).max())
        native_bf16 = any(c.precision == "bf16" for c in contenders)
        peaks = all_peaks(args.threads, native_bf16)
        tf_times = []
        tf_args = SimpleNamespace(
            reference_python=args.reference_python,
            model=args.model,
            threads=args.threads,
            runs=args.runs,
        )
        for _ in range(args.rounds):
            for c in contenders:
                c.times.append(timed(c.run, args.runs)[0])
            if args.reference_python:
                tf_times.append(tf_network(tf_args, folder / "patches.npy", folder / "tf.json"))
            # the peaks too, every round: measured only at a busy moment they read low
            for name, rate in all_peaks(args.threads, native_bf16).items():
                peaks[name] = (max(peaks[name][0], rate[0]), max(peaks[name][1], rate[1]))
    flop = network_flop(args.model, patches)
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    print(f"Load average: {start_load} at the start, {load()} at the end; versions {versions}")
    print(f"\nMeasured GEMM peaks ({SIZE_NOTE}; best of before and each round):\n")
    print("| GEMM | GFLOP/s wall | GFLOP/s per CPU-second |\n|---|---:|---:|")
    for name, (wall, cpu) in peaks.items():
        print(f"| {name} | {wall:.0f} | {cpu:.0f} |")
    tf = (min(w for w, _ in tf_times), min(c for _, c in tf_times)) if tf_times else None
    print(
        f"\nNetwork on {len(patches)} patches ({flop / 1e9:.1f} GFLOP), best of {args.rounds} "
        f"alternating rounds x {args.runs} runs; of peak = GFLOP / best GEMM rate of that "
        "precision / time (wall, and per CPU-second); diff = max |taggram - ours fp32|.\n"
    )
    print(
        "| engine | prec. | wall s | CPU s | of peak, wall | of peak, CPU | vs TF, wall "
        "| vs TF, CPU | max abs diff | one-time cost |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = [(c.name, c.precision, c.times, c.diff, c.one_time, c.part) for c in contenders]
    if tf_times:
        rows.append(("original: one persistent TF session", "fp32", tf_times, None, "", False))
    for name, precision, times, diff, one_time, part in rows:
        wall, cpu = min(w for w, _ in times), min(c for _, c in times)
        _, peak_wall, peak_cpu = best(peaks, precision)
        share = (
            ""
            if part
            else f"{flop / peak_wall / 1e9 / wall:.0%} | {flop / peak_cpu / 1e9 / cpu:.0%}"
        )
        versus = f"{tf[0] / wall:.2f}x | {tf[1] / cpu:.2f}x" if tf and not part else " | "
        shown = "" if diff is None or part else f"{diff:.1e}"
        print(
            f"| {name} | {precision} | {wall:.3f} | {cpu:.3f} | {share or ' | '} | {versus} "
            f"| {shown} | {one_time} |"
        )


if __name__ == "__main__":
    cli = parse_args()
    if cli.fresh:
        fresh(cli)
    else:
        main(cli)
