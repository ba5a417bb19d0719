"""Musicnn's front-end convolutions as plain sgemm calls (NumPy's OpenBLAS), one patch per core.

The front end is 99.9 % of Musicnn's arithmetic (2.8 GFLOP per 3 s patch): five convolutions
of the one-channel log-mel image, each followed by a max over frequency. With a single input
channel a convolution is exactly ``im2col(x) @ W``: every output pixel is the dot product of
its ``kt x kf`` input window with each filter. Done a few time steps at a time, the window
matrix (``16 * 59 x 266`` floats for the first timbral filter, ~1 MB) and the product stay in
the core's L2 cache, and the max over frequency is taken right after, so the full
``(time, freq, channels)`` activations are never written out.

Why not torch's own convolution: on AMD CPUs MKL takes a slow generic path and oneDNN's
single-input-channel convolution reaches about a quarter of the machine's sgemm rate, while
OpenBLAS's AVX-512 / AVX2 sgemm kernels run near peak on these shapes. Each patch runs on one
BLAS thread; the patches are spread over ``threads`` Python threads (NumPy releases the GIL
in ``matmul`` and copies), which avoids BLAS threads spinning on a busy machine.

Numerically this is the same sum as ``conv2d`` in another order (float32, < 1e-6 apart).

In bfloat16 (CPUs with AVX512_BF16 or AMX) the same chunks go through torch's bf16 matmul
(oneDNN), which on such CPUs runs about twice the float32 rate: inputs and weights rounded to
bf16, products accumulated in float32, as autocast would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

_threads_lock = threading.Lock()
_threads_users = 0  # songs in the front end now
_threads_saved: tuple[int, threadpool_limits] | None = None  # torch's count, the BLAS limiter


@contextmanager
def _one_thread_each() -> Iterator[None]:
    """torch and BLAS on one thread each while any song runs through the front end (each patch
    is one thread's work), then back to what they were.

    Both settings act on the whole process: a thread that starts using torch later takes the
    last count set, so setting it inside pool threads and never restoring it, as an earlier
    version did, left every later worker thread (gradio's, running Generate) on one core.
    Counted, so two songs at once restore the settings only when both are done (nested
    ``threadpool_limits`` would restore the inner one's 1)."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            threads = torch.get_num_threads()
            _threads_saved = threads, threadpool_limits(1, user_api="blas")
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0 and _threads_saved is not None:
                threads, blas = _threads_saved
                torch.set_num_threads(threads)
                blas.restore_original_limits()
                _threads_saved = None


# time steps per GEMM: 16 x 59 rows x 266 (or 16 x 96 x 128) keeps operands and product in L2
_CHUNK = 16
# bf16 operands are half the size, and oneDNN's bf16 GEMM wants more rows per call
_CHUNK_BF16 = 32


@dataclass(frozen=True)
class _Filter:
    weight: np.ndarray  # (kt * kf, C) float32, columns sign-flipped where the BN scale is < 0
    weight_bf16: torch.Tensor  # the same, bfloat16; transposed (C, kt * kf) for time-only filters
    bias: np.ndarray  # (C,) float32, sign-flipped likewise
    sign: np.ndarray  # (C,) float32, +1 or -1
    kernel: tuple[int, int]  # (kt, kf)
    padding: tuple[int, int]  # zero frames before and after, along time


def _filter_of(block) -> _Filter:
    # The same exact trick as FrontendBlock.forward: max over frequency of the conv with the
    # weights negated where the BN scale is negative gives -min, so one max serves all.
    with torch.no_grad():
        sign = torch.where(block.bn.weight < 0, -1.0, 1.0)
        weight = block.conv.weight * sign[:, None, None, None]  # (C, 1, kt, kf)
        channels, _, kt, kf = weight.shape
        matrix = weight.reshape(channels, kt * kf).T.contiguous()
        return _Filter(
            weight=matrix.numpy(),
            weight_bf16=(matrix.T.contiguous() if kf == 1 else matrix).to(torch.bfloat16),
            bias=(block.conv.bias * sign).numpy().copy(),
            sign=sign.numpy().astype(np.float32),
            kernel=(kt, kf),
            padding=tuple(block.time_padding),
        )


class GemmFrontend:
    """The five front-end blocks of a loaded :class:`~albumcover.ear.musicnn.Musicnn`, up to the
    max over frequency: ``(B, T, 96)`` normalised log-mel -> ``(B, 561, T)`` pooled (before
    ReLU and batch norm, which the network applies on the small pooled maps)."""

    def __init__(self, network):
        self.filters = [_filter_of(b) for b in list(network.timbral) + list(network.temporal)]
        self.channels = sum(f.weight.shape[1] for f in self.filters)

    def __call__(self, x: np.ndarray, threads: int = 1, bf16: bool = False) -> np.ndarray:
        """``x``: (B, T, n_mels) float32 (after the input batch norm) -> (B, C, T) float32,
        patches spread over ``threads`` threads; ``bf16``: multiply in bfloat16."""

        x = np.ascontiguousarray(x, dtype=np.float32)
        out = np.empty((len(x), self.channels, x.shape[1]), dtype=np.float32)
        patch = self._patch_bf16 if bf16 else self._patch

        def run(i: int) -> None:
            out[i] = patch(x[i]).T

        with _one_thread_each():  # one BLAS and one torch thread per patch
            if threads <= 1 or len(x) == 1:
                for i in range(len(x)):
                    run(i)
            else:
                with ThreadPoolExecutor(min(threads, len(x))) as pool:
                    list(pool.map(run, range(len(x))))
        return out

    def _patch(self, image: np.ndarray) -> np.ndarray:
        """One (T, F) image -> (T, C): every filter's max over frequency, bias, sign restored."""
        frames = image.shape[0]
        pooled = np.empty((frames, self.channels), dtype=np.float32)
        column = 0
        for f in self.filters:
            kt, kf = f.kernel
            before, after = f.padding
            padded = np.pad(image, ((before, after), (0, 0)))
            windows = np.lib.stride_tricks.sliding_window_view(padded, (kt, kf))  # (T, F', kt, kf)
            freqs, channels = windows.shape[1], f.weight.shape[1]
            target = pooled[:, column : column + channels]
            for start in range(0, frames, _CHUNK):
                rows = windows[start : start + _CHUNK].reshape(-1, kt * kf)  # im2col (copy)
                z = rows @ f.weight  # (steps * F', C)
                target[start : start + _CHUNK] = z.reshape(-1, freqs, channels).max(axis=1)
            # the bias commutes with the max (rounding is monotone), then the sign comes back
            target += f.bias
            target *= f.sign
            column += channels
        return pooled

    def _patch_bf16(self, image: np.ndarray) -> np.ndarray:
        """:meth:`_patch` with bfloat16 operands (float32 accumulation, float32 out)."""
        frames = image.shape[0]
        pooled = np.empty((frames, self.channels), dtype=np.float32)
        source = torch.from_numpy(image).to(torch.bfloat16)
        column = 0
        with torch.inference_mode():
            for f in self.filters:
                kt, kf = f.kernel
                before, after = f.padding
                padded = torch.nn.functional.pad(source, (0, 0, before, after))
                windows = padded.unfold(0, kt, 1).unfold(1, kf, 1)  # (T, F', kt, kf)
                freqs, channels = windows.shape[1], f.weight.shape[1]
                target = pooled[:, column : column + channels]
                for start in range(0, frames, _CHUNK_BF16):
                    rows = windows[start : start + _CHUNK_BF16].reshape(-1, kt * kf)
                    if kf == 1:
                        # few channels (51): the product as (C, steps * F') keeps bf16's max over
                        # frequency a contiguous reduction, ~2x faster than over a middle axis
                        z = f.weight_bf16 @ rows.T
                        peak = z.view(channels, -1, freqs).amax(dim=2).T
                    else:
                        z = rows @ f.weight_bf16  # (steps * F', C)
                        peak = z.view(-1, freqs, channels).amax(dim=1)
                    target[start : start + _CHUNK_BF16] = peak.float().numpy()
                target += f.bias
                target *= f.sign
                column += channels
        return pooled
