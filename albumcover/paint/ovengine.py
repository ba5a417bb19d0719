"""The denoiser (an SD 1.x / 2.x UNet) through OpenVINO on a CPU: the fastest engine measured for
the pass that dominates a cover's time.

Measured on a 2-core AVX-512 AMD EPYC, idle, one pass of the full-size SD 1.5 UNet at 512 x 512
(``benchmarks/bench_engines.py``, ``benchmarks/README.md``): OpenVINO in bfloat16 2.17 s (77 %
of torch's bf16 GEMM peak) against 3.15 s for torch eager with channels_last, the best torch
path; ``torch.compile`` and ONNX Runtime were slower still. What makes the difference is
OpenVINO's fused attention and convolution kernels, not the arithmetic.

The UNet, LoRAs already fused, is converted once per set of weights (``ov.convert_model`` from the
torch module, ~25-30 s for SD 1.5 in bfloat16 on 2 cores) and saved as OpenVINO IR to
``<cache_dir>/unet-<weights hash>/``; later processes read and compile that (~2.4 s with the
hash). The files are a pure function of the weights and the engine's format, so a damaged or lost
export is simply made again, and only the few most recently used exports are kept (each is
~1.7 GB).

The torch UNet stays loaded: the pipeline reads its config, dtype and device, and any call with
inputs the export does not take (a ControlNet's residuals, IP-Adapter embeddings, ...) runs in
torch as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from .errors import GeneratorError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "openvino")
# Bump when the exported graph changes (other inputs, another conversion): old exports are then
# not found, and pruned as the least recently used.
EXPORT_FORMAT = 1
KEEP_EXPORTS = 3  # exports kept in the cache, most recently used first
_XML = "unet.xml"
_PRECISION = {"bfloat16": "bf16", "float32": "f32"}
# what the app and the CLI call the setting that keeps the UNet in torch
ENGINE_SETTING = "ALBUMCOVER_ENGINE=torch (CLI: --engine torch)"
# the only arguments the export takes; any other one given a value runs the torch UNet
_PLAIN = {"return_dict"}


def available() -> bool:
    """Whether OpenVINO is installed (found, not imported: a process painting in torch does not
    pay its import)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):  # a module set to None or without a spec
        return False


def default_cache_dir() -> Path:
    """Where exports go by default: the user's cache folder, ``albumcover/openvino``."""
    return platformdirs.user_cache_path("albumcover") / "openvino"


def unsupported(unet: Any, device: str, dtype: torch.dtype) -> str | None:
    """Why OpenVINO cannot run ``unet`` on ``device`` in ``dtype`` (None: it can). It takes a
    plain text-conditioned UNet (SD 1.x / 2.x and their fine-tunes) on a CPU in bfloat16 or
    float32, with OpenVINO installed."""
    if not available():
        return "OpenVINO is not installed (pip install openvino)"
    if device != "cpu":
        return f"OpenVINO runs on the CPU here, not on {device!r}"
    name = str(dtype).removeprefix("torch.")
    if name not in _PRECISION:
        return f"OpenVINO runs bfloat16 or float32, not {name}"
    if unet is None:
        return "the pipeline has no UNet (its denoiser is a transformer)"
    if type(unet).__name__ != "UNet2DConditionModel":
        return f"the denoiser is a {type(unet).__name__}, not an SD 1.x / 2.x UNet"
    config = unet.config
    for key in ("addition_embed_type", "class_embed_type", "time_cond_proj_dim"):
        if config.get(key) is not None:  # SDXL's size/text conditioning, LCM-distilled UNets
            return f"the UNet has {key}={config.get(key)!r}, which the export does not take"
    return None


def weights_digest(unet: torch.nn.Module) -> str:
    """A short hash of ``unet``'s config and weights (names, shapes, dtypes and bytes): the
    export's name, so another model, LoRA or LoRA scale gets its own."""
    import torch

    digest = hashlib.sha256(f"albumcover-openvino-unet-{EXPORT_FORMAT}".encode())
    digest.update(json.dumps(dict(unet.config), sort_keys=True, default=str).encode())
    for name, tensor in unet.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(flat.view(torch.uint8).numpy().data)  # bf16 has no numpy type; bytes do
    return digest.hexdigest()[:20]


def _plain(unet):
    """The UNet as a function of three tensors: the graph the export traces."""
    import torch

    class Plain(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.inner(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    return Plain(unet).eval()


def export_unet(unet: torch.nn.Module, folder: Path) -> None:
    """Convert ``unet`` to OpenVINO IR in ``folder`` (``unet.xml`` and ``unet.bin``).

    Inputs: ``sample`` (batch, channels, height / 8, width / 8) float32, ``timestep`` (batch,)
    float32, ``encoder_hidden_states`` (batch, tokens, width) float32; output like ``sample``.
    Batch, latent size and tokens stay free, so one export serves every size and number of
    covers. Traced in the UNet's own dtype, weights as they are (a bfloat16 UNet is not widened:
    half the conversion's memory and time), with the sample and the text rounded to it at the
    graph's entry and the timestep kept in float32, where torch computes its embedding.
    """
    import openvino as ov
    import torch

    dtype = unet.dtype
    config = unet.config
    size = config.sample_size if isinstance(config.sample_size, int) else 64
    example = (
        torch.randn(1, config.in_channels, size, size, dtype=dtype),
        torch.tensor([999.0]),
        torch.randn(1, 77, config.cross_attention_dim, dtype=dtype),
    )
    shapes = [
        ("sample", ov.PartialShape([-1, config.in_channels, -1, -1])),
        ("timestep", ov.PartialShape([-1])),
        ("encoder_hidden_states", ov.PartialShape([-1, -1, config.cross_attention_dim])),
    ]
    # OpenVINO reads the weights' memory as if contiguous: a channels-last UNet (as the CPU
    # runs it) is traced in the plain layout, switched in place, one weight at a time
    channels_last = unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    try:
        unet.to(memory_format=torch.contiguous_format)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notices: nothing a user can act on
            model = ov.convert_model(_plain(unet), example_input=example, input=shapes)
        if dtype != torch.float32:  # float32 in and out, whatever the weights
            steps = ov.preprocess.PrePostProcessor(model)
            for index in (0, 2):
                steps.input(index).tensor().set_element_type(ov.Type.f32)
            steps.output(0).tensor().set_element_type(ov.Type.f32)
            model = steps.build()
        # saved before the layout changes back: the graph shares the weights' memory
        ov.save_model(model, folder / _XML, compress_to_fp16=False)
        del model
    finally:
        if channels_last:
            unet.to(memory_format=torch.channels_last)


class OvUNet:
    """A compiled OpenVINO UNet that stands in for the torch UNet's ``forward``.

    ``model``: the IR's path; ``dtype``: the pipeline's (bfloat16 runs OpenVINO in bf16,
    float32 in f32: OpenVINO would pick bf16 on such a CPU by itself); ``threads``: its
    inference threads (torch's count by default).
    """

    def __init__(self, model: Path, dtype: torch.dtype, threads: int):
        import openvino as ov

        config = {
            "INFERENCE_PRECISION_HINT": _PRECISION[str(dtype).removeprefix("torch.")],
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(model), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, sample, timestep, encoder_hidden_states) -> torch.Tensor:
        """One pass: ``sample`` (B, C, H, W), ``timestep`` a number or (B,) tensor,
        ``encoder_hidden_states`` (B, T, D) -> the prediction (B, C, H, W) in ``sample``'s
        dtype."""
        import torch

        batch = sample.shape[0]
        t = torch.as_tensor(timestep, dtype=torch.float32).reshape(-1).expand(batch)
        feed = [
            sample.float().contiguous().numpy(),
            t.contiguous().numpy(),
            encoder_hidden_states.float().contiguous().numpy(),
        ]
        with self._lock:  # one infer request: its output buffer is reused by the next call
            out = torch.from_numpy(self.request.infer(feed)[0].copy())
        return out.to(sample.dtype)


@dataclass
class Attached:
    """What loading the export did: its folder, whether it was made now, and the seconds taken."""

    folder: Path
    exported: bool
    seconds: float


def load_unet(unet: torch.nn.Module, cache_dir: Path, threads: int) -> tuple[OvUNet, Attached]:
    """``unet`` compiled by OpenVINO, from its export in ``cache_dir`` when a readable one is
    there, else exported now (written atomically: a folder renamed into place).

    Raises:
        OSError: the cache folder cannot be written (the export needs the disk).
        RuntimeError: OpenVINO cannot convert or compile the UNet.
    """
    start = time.perf_counter()
    cache_dir = Path(cache_dir)
    folder = cache_dir / f"unet-{weights_digest(unet)}"
    if (folder / _XML).is_file():
        try:
            engine = OvUNet(folder / _XML, unet.dtype, threads)
            with contextlib.suppress(OSError):  # a read-only cache is still a good one
                os.utime(folder)  # most recently used: kept by the pruning
            return engine, Attached(folder, False, time.perf_counter() - start)
        except Exception as e:  # OpenVINO's own errors for a truncated or damaged IR
            log.warning("exporting the UNet again: %s is unreadable (%s)", folder, e)
    if folder.exists() or folder.is_symlink():  # damaged, or half of one: made again below
        _remove(folder)
    # a warning, so the command line shows it too: the first run pauses for it without a bar
    log.warning(
        "converting the UNet for OpenVINO, once for this model and LoRA (about half a minute "
        "for SD 1.5 on 2 cores); later starts read it from %s",
        folder,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=cache_dir))
    try:
        export_unet(unet, staging)
        try:
            staging.rename(folder)
        except OSError:  # another process got there first: theirs is the same
            if not (folder / _XML).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(cache_dir, keep=folder)
    engine = OvUNet(folder / _XML, unet.dtype, threads)
    return engine, Attached(folder, True, time.perf_counter() - start)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _prune(cache_dir: Path, keep: Path) -> None:
    """Remove all but the :data:`KEEP_EXPORTS` most recently used exports (and staging folders
    left by a killed process more than a day ago)."""
    exports = sorted(
        (p for p in cache_dir.glob("unet-*") if p.is_dir() and p != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    stale = [p for p in cache_dir.glob(".unet-*") if time.time() - p.stat().st_mtime > 86400]
    for old in exports[KEEP_EXPORTS - 1 :] + stale:
        log.info("removing an old OpenVINO export: %s", old)
        shutil.rmtree(old, ignore_errors=True)


def attach(pipe: Any, cache_dir: Path, threads: int) -> Attached:
    """Run ``pipe.unet``'s plain passes through OpenVINO: its ``forward`` is replaced by one
    that calls the compiled export and falls back to the torch UNet for any other inputs.
    Check :func:`unsupported` first."""
    unet = pipe.unet
    engine, attached = load_unet(unet, cache_dir, threads)
    torch_forward = unet.forward

    def forward(sample, timestep, encoder_hidden_states, *args, **kwargs):
        others = [k for k, v in kwargs.items() if v is not None and k not in _PLAIN]
        if args or others:
            return torch_forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
        out = engine(sample, timestep, encoder_hidden_states)
        if kwargs.get("return_dict", True):
            from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

            return UNet2DConditionOutput(sample=out)
        return (out,)

    unet.forward = forward
    return attached


def choose_engine(
    pipe: Any, engine: str, kind: str, dtype: torch.dtype, cache, name: str, notes: list[str]
) -> str:
    """Put ``pipe``'s denoiser on ``engine`` ("auto", "torch" or "openvino") where it can run
    on device ``kind`` in ``dtype``, with exports in ``cache`` (None: :func:`default_cache_dir`);
    return the engine it runs on. What the user should know goes to ``notes``.

    "auto" takes OpenVINO only where it was measured faster than torch (a CPU in bfloat16:
    benchmarks/README.md) and falls back to torch, with a note, when the conversion fails.
    """
    import torch

    if engine == "torch":
        return "torch"
    unet = getattr(pipe, "unet", None)
    why = unsupported(unet, kind, dtype)
    if engine == "auto" and why is None and dtype != torch.bfloat16:
        why = "OpenVINO was measured faster in bfloat16 only"
    if why is not None:
        if engine == "openvino":
            raise GeneratorError(f"engine openvino for {name!r}: {why}; use the torch engine")
        log.debug("denoiser in torch: %s", why)
        return "torch"
    folder = Path(os.fspath(cache)) if cache is not None else default_cache_dir()
    try:
        attached = attach(pipe, folder, torch.get_num_threads())
    except Exception as e:  # no disk for the export, a graph OpenVINO cannot convert
        if engine == "openvino":
            raise GeneratorError(f"OpenVINO cannot run the UNet of {name!r}: {e}") from e
        log.warning("denoiser in torch: OpenVINO failed (%s)", e)
        notes.append(
            f"The denoiser runs in torch: OpenVINO could not convert it ({e}). "
            f"{ENGINE_SETTING} skips the attempt."
        )
        return "torch"
    log.info(
        "denoiser in OpenVINO (%s, %s in %.1f s)",
        attached.folder,
        "converted and cached" if attached.exported else "read from the cache",
        attached.seconds,
    )
    return "openvino"
