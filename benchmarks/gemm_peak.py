"""The machine's measured matrix-multiply peaks: the floor under any exact tagger.

Each rate is the best of ``runs`` products of two square matrices (2n^3 flops), as GFLOP/s of
wall time and per CPU-second (on a shared machine the second is the steadier figure):

- torch fp32 ``matmul`` (MKL's sgemm; it takes a slow path on AMD CPUs),
- oneDNN fp32 (a 1x1 ``conv2d`` through torch's mkldnn backend is exactly a GEMM),
- NumPy's OpenBLAS sgemm, in a child process with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``
  removed from its environment (only there: OpenBLAS then picks its own kernel for this CPU),
- torch bf16 ``matmul`` (oneDNN with AVX512_BF16/AMX), where the CPU has it natively.

    .venv/bin/python -m benchmarks.gemm_peak [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZE = 2048


def best_rate(fn, flop: float, runs: int = 5) -> tuple[float, float]:
    """(GFLOP/s of wall time, GFLOP/s per CPU-second), best of ``runs`` after a warm-up."""
    fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w)
        cpu = min(cpu, time.process_time() - c)
    return flop / wall / 1e9, flop / max(cpu, 1e-9) / 1e9


def torch_peaks(threads: int = 0, bf16: bool = True) -> dict[str, tuple[float, float]]:
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    n = SIZE
    a, b = torch.rand(n, n), torch.rand(n, n)
    flop = 2.0 * n**3
    rates = {"torch fp32 matmul (MKL)": best_rate(lambda: a @ b, flop)}
    if torch.backends.mkldnn.is_available():
        # (1, K, n, 1) image, (N, K, 1, 1) kernel: an n x K by K x N product in oneDNN
        image, kernel = a.T.reshape(1, n, n, 1).contiguous(), b.T.reshape(n, n, 1, 1).contiguous()
        with torch.inference_mode():
            rates["oneDNN fp32 (1x1 conv)"] = best_rate(lambda: F.conv2d(image, kernel), flop)
    if bf16:
        ab, bb = a.bfloat16(), b.bfloat16()
        rates["torch bf16 matmul (oneDNN)"] = best_rate(lambda: ab @ bb, flop)
    return rates


def openblas_peak(threads: int = 0) -> tuple[float, float]:
    """NumPy/OpenBLAS sgemm, measured in a child process with OpenBLAS's overrides unset."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    if threads:
        env["OPENBLAS_NUM_THREADS"] = str(threads)
    code = (
        "import json, numpy as np; "
        "from benchmarks.gemm_peak import best_rate, SIZE as n; "
        "a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32); "
        "print(json.dumps(best_rate(lambda: a @ b, 2.0 * n**3)))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # -c imports from cwd
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def all_peaks(threads: int = 0, bf16: bool = True) -> dict[str, tuple[float, float]]:
    """Every rate above, by name; "numpy fp32 (OpenBLAS)" included."""
    rates = torch_peaks(threads, bf16)
    rates["numpy fp32 (OpenBLAS)"] = openblas_peak(threads)
    return rates


def best(rates: dict[str, tuple[float, float]], kind: str) -> tuple[str, float, float]:
    """(name, wall rate, per-CPU-second rate) of the fastest ``kind`` ("fp32"/"bf16") GEMM;
    the two rates are each the best over the libraries."""
    chosen = {k: v for k, v in rates.items() if kind in k}
    name = max(chosen, key=lambda k: chosen[k][0])
    return name, chosen[name][0], max(v[1] for v in chosen.values())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="0: the libraries' default")
    cli = parser.parse_args()
    for label, (wall, cpu) in all_peaks(cli.threads).items():
        print(f"{label}: {wall:.0f} GFLOP/s wall, {cpu:.0f} per CPU-second")
