"""Inference engines side by side for the painter's two CPU-heavy networks: the full-size SD 1.5
UNet (one pass, batch 1, 64x64 latents = a 512x512 cover, 77-token text) and TAESD's decoder
(64x64 latents to a 512x512 image), in float32 and bfloat16, all measured in ONE run:

- PyTorch eager, channels_last off and on;
- ``torch.compile`` (inductor, CPU; freezing on, so oneDNN prepacks the weights);
- ONNX Runtime (CPU execution provider; the model exported with ``torch.onnx.export``);
- OpenVINO (``ov.convert_model`` from the PyTorch module; ``INFERENCE_PRECISION_HINT``),
  when it is installed (``pip install openvino``: a benchmark-only engine).

Each row: the set-up seconds (export, conversion or compilation), the best of ``--runs`` passes
after a warm-up, GFLOP/s (flops counted by torch's FlopCounterMode on the eager float32 pass)
and that rate as a fraction of the same dtype's GEMM peak, measured in the same run
(:mod:`benchmarks.gemm_peak`), and the largest difference from eager float32's output (an
engine that is fast but wrong shows here). Random weights: the compute is the real model's.

    .venv/bin/python -m benchmarks.bench_engines --threads 2 --runs 2
    .venv/bin/python -m benchmarks.bench_engines --models taesd --engines eager,ort
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

ENGINES = ("eager", "channels_last", "compile", "ort", "openvino")
MODELS = ("taesd", "unet")
DTYPES = ("fp32", "bf16")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma list of {MODELS}")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of {ENGINES}")
    p.add_argument("--dtypes", default=",".join(DTYPES), help="comma list of fp32, bf16")
    p.add_argument("--runs", type=int, default=2, help="timed passes per row (best kept)")
    p.add_argument("--threads", type=int, default=0, help="0: the libraries' default")
    args = p.parse_args(argv)
    for name, allowed in (("models", MODELS), ("engines", ENGINES), ("dtypes", DTYPES)):
        chosen = [x for x in getattr(args, name).split(",") if x]
        if not chosen or set(chosen) - set(allowed):
            p.error(f"--{name} must be a comma list of {allowed}")
        setattr(args, name, chosen)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    return args


def build(name: str):
    """(module, example inputs) in float32 with random weights; the module returns one tensor."""
    import torch
    from diffusers import AutoencoderTiny, UNet2DConditionModel

    from tests.tiny_models import FULL_SIZE

    torch.manual_seed(0)
    if name == "taesd":
        decoder = AutoencoderTiny().decoder.eval()  # TAESD's architecture: AutoencoderTiny()
        return decoder, (torch.randn(1, 4, 64, 64),)

    unet = UNet2DConditionModel(**FULL_SIZE["unet"]).eval()

    class Unet(torch.nn.Module):  # a plain tensor in and out, for the exporters
        def __init__(self):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, text):
            return self.unet(sample, timestep, text, return_dict=False)[0]

    inputs = (torch.randn(1, 4, 64, 64), torch.tensor([999]), torch.randn(1, 77, 768))
    return Unet().eval(), inputs


def cast(inputs, dtype):
    return tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs)


def count_flops(module, inputs) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return float(counter.get_total_flops())


def best_of(fn, runs: int) -> float:
    fn()  # warm-up: kernels, allocator, lazy initialisation
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def prepare(engine: str, module, inputs, dtype: str, threads: int, tmp: Path):
    """A callable running one pass and returning a float32 numpy array."""
    import numpy as np
    import torch

    torch_dtype = torch.bfloat16 if dtype == "bf16" else torch.float32
    module = module.to(torch_dtype)
    inputs = cast(inputs, torch_dtype)
    if engine in ("eager", "channels_last", "compile"):
        if engine == "channels_last":
            module = module.to(memory_format=torch.channels_last)
            inputs = tuple(
                x.to(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs
            )
        if engine == "compile":
            import torch._inductor.config as inductor

            inductor.freezing = True  # constant weights: oneDNN prepacks them once
            module = torch.compile(module)

        def run():
            with torch.inference_mode():
                return module(*inputs).float().numpy()

        if engine == "compile":
            run()  # the compilation itself, counted as set-up
        return run
    if engine == "ort":
        import onnxruntime as ort

        if dtype == "bf16":
            raise RuntimeError("ONNX Runtime's CPU provider has no bfloat16 kernels for these ops")
        path = tmp / "model.onnx"
        names = [f"in{i}" for i in range(len(inputs))]
        with torch.inference_mode():
            torch.onnx.export(
                module, inputs, str(path), input_names=names, dynamo=False, opset_version=17
            )
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {n: x.numpy() for n, x in zip(names, inputs, strict=True)}
        return lambda: np.asarray(session.run(None, feed)[0], dtype=np.float32)
    if engine == "openvino":
        import openvino as ov

        module = module.float()  # converted from float32; the precision is the plugin's hint
        with torch.inference_mode():
            model = ov.convert_model(module, example_input=cast(inputs, torch.float32))
        config = {"INFERENCE_PRECISION_HINT": "bf16" if dtype == "bf16" else "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(model, "CPU", config)
        request = compiled.create_infer_request()
        feed = [x.float().numpy() for x in cast(inputs, torch.float32)]
        return lambda: np.asarray(request.infer(feed)[0], dtype=np.float32)
    raise ValueError(engine)


def main(args) -> None:
    import numpy as np
    import torch

    from benchmarks.gemm_peak import torch_peaks
    from benchmarks.machine import describe

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    peaks = torch_peaks(args.threads, bf16="bf16" in args.dtypes)
    peak = {
        "fp32": max(v[0] for k, v in peaks.items() if "fp32" in k),
        "bf16": max((v[0] for k, v in peaks.items() if "bf16" in k), default=float("nan")),
    }
    for label, (wall, _) in peaks.items():
        print(f"GEMM peak, {label}: {wall:.0f} GFLOP/s")
    rows, flops_of = [], {}
    for name in args.models:
        module, inputs = build(name)
        flops = flops_of[name] = count_flops(module, inputs)
        with torch.inference_mode():
            reference = module(*inputs).float().numpy()
        print(f"\n{name}: {flops / 1e9:.1f} GFLOP per pass", flush=True)
        for engine in args.engines:
            for dtype in args.dtypes:
                fresh, _ = build(name)  # every engine starts from the same float32 weights
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.perf_counter()
                    try:
                        run = prepare(engine, fresh, inputs, dtype, args.threads, Path(tmp))
                    except Exception as e:  # not installed, not supported
                        rows.append((name, engine, dtype, None, None, f"{type(e).__name__}: {e}"))
                        print(f"  {engine} {dtype}: n/a ({str(e)[:120]})", flush=True)
                        continue
                    setup = time.perf_counter() - start
                    seconds = best_of(run, args.runs)
                    diff = float(np.abs(run() - reference).max())
                rate = flops / seconds / 1e9
                rows.append((name, engine, dtype, setup, seconds, f"{diff:.2g}"))
                print(
                    f"  {engine} {dtype}: {seconds:.3f} s ({rate:.0f} GFLOP/s, "
                    f"{rate / peak[dtype]:.0%} of peak), set-up {setup:.1f} s, "
                    f"max diff {diff:.2g}; load {describe().rsplit('load ', 1)[-1]}",
                    flush=True,
                )
                del run, fresh
                gc.collect()
        del module
        gc.collect()
    print(f"\nmachine: {describe()}\n")
    print("| network | engine | dtype | set-up s | pass s | GFLOP/s | of GEMM peak | max diff |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name, engine, dtype, setup, seconds, diff in rows:
        if seconds is None:
            print(f"| {name} | {engine} | {dtype} | n/a | n/a | | | {diff[:80]} |")
            continue
        rate = flops_of[name] / seconds / 1e9
        print(
            f"| {name} | {engine} | {dtype} | {setup:.1f} | {seconds:.3f} | {rate:.0f} | "
            f"{rate / peak[dtype]:.0%} | {diff} |"
        )


if __name__ == "__main__":
    main(parse_args())
