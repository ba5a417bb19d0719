"""Keeping the app's memory bounded under sustained load (see benchmarks/bench_soak.py).

What grows in a long-running gradio + torch process, and what this module does about it:

* glibc malloc gives each thread that allocates its own arena (up to 8 per core) and keeps what
  is freed there for reuse; gradio runs handlers and file processing on a pool of worker threads,
  so each new thread grows the heap by its peak. :func:`limit_malloc_arenas` caps the arenas,
  :func:`release_after` hands freed memory back to the system after each request (malloc_trim).
* gradio keeps one session state (a copy of every component's config) per visitor, up to
  ``state_session_capacity`` (10000 by default) and for good: app.py lowers the capacity.
* uploads and results are files in gradio's cache folder: app.py deletes old ones
  (``delete_cache``).

Both allocator calls are no-ops where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger("albumcover.app")

_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


@functools.cache
def _glibc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim  # noqa: B018 (only glibc has it)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Let glibc use at most ``arenas`` malloc arenas from now on (what MALLOC_ARENA_MAX sets
    at start-up); True if it took effect. Call before the worker threads start."""
    libc = _glibc()
    ok = bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)
    if not ok:
        log.info("malloc arenas not limited (not glibc)")
    return ok


def release_freed_memory() -> None:
    """Give memory that is free inside malloc's heaps back to the system (glibc malloc_trim)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def release_after(fn: Callable) -> Callable:
    """Wrap a request handler so freed memory is released when it returns or raises. The
    signature is kept (gradio reads parameters and defaults from it)."""

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_freed_memory()

    return handler
