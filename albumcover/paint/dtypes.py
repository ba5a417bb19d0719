"""Which device a pipeline runs on, which floating-point type its weights are converted to
(bfloat16 on CPUs that run it natively, float16 on CUDA, float32 elsewhere; and the names the CLI
and the app accept), and the memory layout a CPU prefers.

bfloat16 here means the weights themselves are converted (``pipe.to(dtype=torch.bfloat16)``,
text encoder and tiny decoder included), not autocast: on a CPU with AVX512_BF16 or AMX, oneDNN's
bf16 GEMMs run at about twice the float32 rate and the weights take half the memory. Without
those instructions torch emulates bf16 (several times slower than float32), so it is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# name given by a user -> torch's name
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}
AUTO = "auto"
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def parse_dtype(name: str | None) -> str | None:
    """The canonical dtype name for ``name`` ("bf16" -> "bfloat16"...); None for None, "" or
    "auto" (the device decides: :func:`default_dtype`).

    Raises:
        ValueError: an unknown name; the message lists the accepted ones.
    """
    if name is None or not name.strip() or name.strip().lower() == AUTO:
        return None
    key = name.strip().lower()
    if key not in DTYPE_NAMES:
        accepted = ", ".join([AUTO, *DTYPE_NAMES])
        raise ValueError(f"unknown dtype {name!r}; one of: {accepted}")
    return DTYPE_NAMES[key]


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 natively: a CPU with AVX512_BF16 or AMX (as torch
    reads CPUID), a CUDA GPU that supports it. False elsewhere (MPS included)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(flag, False) for flag in _NATIVE_BF16_FLAGS)


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA; bfloat16 on a CPU with native bf16 (:func:`bf16_native`); float32
    elsewhere (a CPU without it, MPS)."""
    import torch

    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and bf16_native(device):
        return torch.bfloat16
    return torch.float32


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    """The torch dtype to load with: ``dtype`` (a torch dtype or a name :func:`parse_dtype`
    reads) checked against ``device``, or :func:`default_dtype` when None / "auto".

    Raises:
        ValueError: an unknown name, or bfloat16 on a CPU that would emulate it; the message
            says which setting to use instead. (float16 on a CPU is allowed: slow, but some
            tests and conversions want it.)
    """
    import torch

    if dtype is None or isinstance(dtype, str):
        name = parse_dtype(dtype)
        if name is None:
            return default_dtype(device)
        dtype = getattr(torch, name)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    if device.type == "cpu" and dtype == torch.bfloat16 and not bf16_native(device):
        raise ValueError(
            "bfloat16 is emulated on this CPU (no AVX512_BF16 or AMX: several times slower "
            "than float32); use float32"
        )
    return dtype


def dtype_label(dtype: torch.dtype) -> str:
    """ "bfloat16" for torch.bfloat16: the name the settings accept."""
    return str(dtype).removeprefix("torch.")


def pick_device() -> str:
    """ "cuda" if available, else "mps", else "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def prefer_channels_last(pipe) -> None:
    """The UNet and the VAE (or tiny VAE) in the channels-last layout, which oneDNN's CPU
    convolutions run without reordering each activation: on 2 cores a bf16 SD 1.5 UNet pass
    and a TAESD decode took about half the time (benchmarks/bench_engines.py)."""
    import torch

    for name in ("unet", "vae"):
        module = getattr(pipe, name, None)
        if isinstance(module, torch.nn.Module):
            module.to(memory_format=torch.channels_last)
