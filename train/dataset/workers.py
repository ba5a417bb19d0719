"""Decode and featurise tracks in worker processes while this process runs the taggers.

The dataset builder's expensive steps per track are the decode (ffmpeg/libsndfile + resampling),
the log-mel patches and the two networks. ``N`` worker processes do the first two
(:func:`track_patches`, NumPy only: no torch is imported there) and hand back the patches; the
parent feeds them to the taggers it already holds (on a GPU, many tracks' patches in one
batch). Results come back in track order, so a build with workers writes exactly what a serial
build writes: the same functions compute the same numbers, only in another process.

Worker processes are started with ``spawn`` (not ``fork``): the parent holds torch's thread
pools, which a forked child must not inherit.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from albumcover.ear.audio import AudioError, load_audio
from albumcover.ear.features import song_patches

logger = logging.getLogger(__name__)

# futures in flight per worker: enough to keep every worker busy while the parent tags, few
# enough that patches waiting for the taggers stay small (~4 MB per 3-minute track)
_PREFETCH_PER_WORKER = 2


@dataclass(frozen=True)
class Decoded:
    """A track's log-mel patches ``(n_patches, 187, 96)`` float32, or why it could not be read."""

    patches: np.ndarray | None
    error_path: str = ""
    error_reason: str = ""

    def raise_error(self) -> None:
        """Re-raise the worker's AudioError here (it does not survive pickling as it is)."""
        if self.patches is None:
            raise AudioError(self.error_path, self.error_reason)


def track_patches(audio: str | Path) -> Decoded:
    """Decode ``audio`` (16 kHz mono) and cut its log-mel patches; runs in a worker process."""

    try:
        return Decoded(song_patches(load_audio(audio)))
    except AudioError as e:
        return Decoded(None, e.path, e.reason)


def _limit_threads() -> None:
    # Each worker decodes one track at a time: more BLAS/FFT threads per worker would only
    # fight the parent's taggers and the other workers for the same cores.
    threadpool_limits(1)


def map_patches(
    items: Iterable,
    audio_of: Callable[[object], Path | None],
    num_workers: int,
    *,
    prefetch: int = 0,
) -> Iterator[tuple[object, Decoded | None]]:
    """``(item, Decoded)`` for every item, in order; decoded by ``num_workers`` processes.

    ``audio_of(item)`` names the file to decode, or None for an item that needs no decode
    (it comes back with None). ``num_workers`` 0 decodes in this process, one item at a time.
    ``prefetch``: items in flight beyond the workers' own few, e.g. a batch of tracks the
    consumer gathers before it tags them, so the workers decode on meanwhile.
    """
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    if num_workers == 0:
        for item in items:
            audio = audio_of(item)
            yield item, (track_patches(audio) if audio is not None else None)
        return
    in_flight = num_workers * _PREFETCH_PER_WORKER + max(0, prefetch)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_limit_threads) as pool:
        pending: deque[tuple[object, Future | None]] = deque()
        iterator = iter(items)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < in_flight:
                try:
                    item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                audio = audio_of(item)
                pending.append((item, None if audio is None else pool.submit(track_patches, audio)))
            if pending:
                item, future = pending.popleft()
                yield item, (future.result() if future is not None else None)
