"""Keeping the app's memory bounded under sustained load (see benchmarks/bench_soak.py).

What grows in a long-running gradio + torch process, and what this module does about it:

* glibc malloc gives each thread that allocates its own arena (up to 8 per core) and keeps what
  is freed there for reuse; gradio runs handlers and file processing on a pool of worker threads,
  so each new thread grows the heap by its peak. :func:`limit_malloc_arenas` caps the arenas,
  :func:`release_after` hands freed memory back to the system after each request (malloc_trim),
  and again, after a full garbage collection, once requests stop.
* gradio keeps one session state (a copy of every component's config) per visitor, up to
  ``state_session_capacity`` (10000 by default) and for good: app.py lowers it to
  :data:`MAX_SESSIONS`.
* uploads and results are files in gradio's cache folder: the page deletes old ones
  (``delete_cache``, :data:`CACHE_MAX_AGE_S`).

Both allocator calls are no-ops where the C library is not glibc (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("albumcover.app")

# What the app keeps (README "What is guaranteed"): uploads and painted covers are files in
# gradio's cache, deleted once older than an hour (swept every 15 minutes); per-visitor session
# state for the most recent MAX_SESSIONS visitors only (gradio's default, 10000, grows for good).
CACHE_MAX_AGE_S = 3600
CACHE_SWEEP_S = 900
MAX_SESSIONS = 200

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


_IDLE_TRIM_S = 2.0  # seconds after the last request: gradio's postprocessing is done by then
_timer_lock = threading.Lock()
_timer: threading.Timer | None = None


def collect_and_release() -> None:
    """Free Python's cyclic garbage (request objects that refer to each other: tracebacks,
    gradio's event data, PIL images in caches), then give the freed memory back. Otherwise a
    burst's garbage waits for the next full collection, which comes every few bursts, and the
    resident size swings with it."""
    gc.collect()
    release_freed_memory()


def _release_when_idle() -> None:
    """Collect and release again shortly after the last request: what gradio frees while it
    post-processes the result (saving images, JSON) comes after the handler's own release."""
    global _timer
    with _timer_lock:
        if _timer is not None:
            _timer.cancel()
        _timer = threading.Timer(_IDLE_TRIM_S, collect_and_release)
        _timer.daemon = True
        _timer.start()


def release_after(fn: Callable) -> Callable:
    """Wrap a request handler so freed memory is released when it returns or raises, and once
    more when requests stop. The signature is kept (gradio reads parameters and defaults)."""

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            release_freed_memory()
            _release_when_idle()

    return handler


# Requests that decode images (the release endpoints, and the page's re-lettering events) run at
# most IMAGE_SLOTS at a time; the others wait their turn. A cover within the default pixel
# budget (albumcover.images.MAX_PIXELS, 36 MP) costs at most PEAK_IMAGE_REQUEST_MB while it is
# decoded, lettered and exported at the largest size (6000 px; benchmarks/bench_release_memory.py
# measured 1174 MB), so the image work stays under 2.4 GB, beside the models (SD 1.5 in fp32
# and the taggers: about 5 GB), within a CPU Space's 16 GB.
IMAGE_SLOTS = 2
PEAK_IMAGE_REQUEST_MB = 1200
_image_slots = threading.BoundedSemaphore(IMAGE_SLOTS)


def bounded(fn: Callable, slots: threading.Semaphore | None = None) -> Callable:
    """Wrap a request handler so at most ``slots`` (default: the shared :data:`IMAGE_SLOTS`)
    such handlers run at once; the others block until one returns or raises. The signature
    is kept."""
    slots = _image_slots if slots is None else slots

    @functools.wraps(fn)
    def handler(*args, **kwargs):
        with slots:
            return fn(*args, **kwargs)

    return handler
