"""Musicnn in exact float32 through ONNX Runtime: the fastest float32 engine measured here.

Measured on an AVX-512 AMD EPYC (benchmarks/README.md, issue 11), 60 patches of a 3-minute
song, 2 cores: ONNX Runtime's convolutions (MLAS) run the network at ~91-95 % of the best
float32 GEMM rate the machine reaches, against ~72 % for the OpenBLAS front end of
:mod:`albumcover.ear.frontend` and ~68 % for the original TensorFlow Musicnn. What makes it so is
the layout: one single-threaded session per core, each fed one patch per ``run`` (a patch's
activations stay in that core's cache); ONNX Runtime's own threading or batching was slower.

The network is exported once per set of weights (``torch.onnx.export``, ~1-3 s) to
``<cache_dir>/<model>-<weights hash>.onnx`` and read from there by later processes (~0.05 s);
the file is a pure function of the weights, so a lost or corrupt one is simply exported again.
Numerically it is the same sum in another order (< 1e-6 from the torch network).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..files import write_atomic

log = logging.getLogger(__name__)

# Bump when the exported graph changes (a new input layout, another opset): old files are
# then simply not found.
EXPORT_FORMAT = 1
_OPSET = 17


def available() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package the exporter needs are installed (found,
    not imported: a process that never tags in float32 does not pay their import)."""

    try:
        return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))
    except (ImportError, ValueError):  # a module set to None or without a spec
        return False


def weights_digest(network: torch.nn.Module) -> str:
    """A short hash of the network's weights (names, shapes and float32 bytes)."""
    digest = hashlib.sha256(f"albumcover-onnx-{EXPORT_FORMAT}".encode())
    for name, tensor in network.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def export_network(network: torch.nn.Module, n_frames: int, n_mels: int) -> bytes:
    """The network as an ONNX model (bytes): input ``patches`` ``(n, n_frames, n_mels)``
    float32, output ``logits`` ``(n, labels)``; the batch size stays free."""
    buffer = io.BytesIO()
    example = torch.zeros(1, n_frames, n_mels)
    with warnings.catch_warnings():
        # the exporter's deprecation and tracer notices: nothing a user can act on
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network.eval(),
            (example,),
            buffer,
            dynamo=False,
            input_names=["patches"],
            output_names=["logits"],
            dynamic_axes={"patches": {0: "n"}, "logits": {0: "n"}},
            opset_version=_OPSET,
        )
    return buffer.getvalue()


def load_network(
    network: torch.nn.Module, name: str, cache_dir: Path, threads: int, n_frames: int, n_mels: int
) -> OrtNetwork:
    """``network`` as an :class:`OrtNetwork` of ``threads`` sessions, from its export in
    ``cache_dir`` when a readable one is there, else exported now (and cached atomically where
    the folder is writable)."""
    path = Path(cache_dir) / f"{name}-{weights_digest(network)}.onnx"
    if path.is_file():
        try:
            return OrtNetwork(path.read_bytes(), threads)
        except Exception as e:  # OSError, or ONNX Runtime's own errors for a damaged file
            log.warning("exporting %s again: the cached %s is unreadable (%s)", name, path, e)
    data = export_network(network, n_frames, n_mels)
    try:
        write_atomic(path, data)
        log.info("%s exported to ONNX for ONNX Runtime: %s", name, path)
    except OSError as e:  # a read-only cache: export again next time, nothing else is lost
        log.warning("cannot cache the ONNX export of %s in %s: %s", name, cache_dir, e)
    return OrtNetwork(data, threads)


class OrtNetwork:
    """One single-threaded ONNX Runtime session per thread, each fed one patch at a time.

    ``model``: ONNX bytes (:func:`export_network`). ``threads``: sessions (and Python
    threads) to spread a song's patches over, normally one per core.
    """

    def __init__(self, model: bytes, threads: int):
        import onnxruntime as ort

        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime's own arena keeps each session's buffers between runs: without it every
        # run maps and faults its activations afresh (a 3-minute song: 1.5-1.8 s instead of
        # 1.1 s per song, measured; peak RSS the same)
        options.enable_cpu_mem_arena = True
        options.log_severity_level = 3  # errors only: its notices are not the user's business
        providers = ["CPUExecutionProvider"]
        self.sessions = [ort.InferenceSession(model, options, providers=providers)]
        self.sessions += [
            ort.InferenceSession(model, options, providers=providers) for _ in range(threads - 1)
        ]
        self._input = self.sessions[0].get_inputs()[0].name
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="albumcover-ort")

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        """Logits ``(n, labels)`` float32 of patches ``(n, frames, mels)`` float32."""
        slices = [s for s in np.array_split(np.arange(len(patches)), len(self.sessions)) if len(s)]

        def run(session, indices) -> list[np.ndarray]:
            return [session.run(None, {self._input: patches[i : i + 1]})[0] for i in indices]

        futures = [
            self._pool.submit(run, session, indices)
            for session, indices in zip(self.sessions, slices, strict=False)
        ]
        return np.concatenate([row for future in futures for row in future.result()])

    def close(self) -> None:
        """Stop the worker threads (the sessions are freed with the object)."""
        self._pool.shutdown(wait=False)
