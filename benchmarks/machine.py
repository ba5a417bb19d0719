"""The one machine description every benchmark prints beside its figures: CPU model, cores,
the SIMD flags that decide which kernels run (AVX2, AVX-512, bf16, AMX) and the load average,
because the same code runs at very different speeds on AVX2-only and AVX-512 machines."""

from __future__ import annotations

import os
import platform
from pathlib import Path

_SIMD = ("avx2", "fma", "amx")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The SIMD flags of this CPU, space separated ("?" where /proc/cpuinfo is unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "?"
    flags = next(
        (ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), []
    )
    return " ".join(f for f in flags if f.startswith(_SIMD) or f.startswith("avx512")) or "none"


def describe() -> str:
    """One line: CPU model, cores, SIMD flags, load average."""
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return f"{cpu_model()}, {os.cpu_count()} cores; flags: {cpu_flags()}; load {load}"
