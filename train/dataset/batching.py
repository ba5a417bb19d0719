"""Batches across tracks: the dataset builder tags several tracks in one tagger call.

One track's patches (10 for a 30 s preview, 60 for a 3-minute song) fill a GPU's forward pass
poorly, and every call waits for its copy back. :func:`tag_in_batches` gathers up to N
consecutive tracks that need a tagger, runs each tagger once over all their patches
(:meth:`albumcover.ear.tagger.Tagger.tag_songs`) and hands the tracks back in order, each with its
results. The builder then captions each track from those results exactly as from cached ones
(replayed through :func:`albumcover.pipeline.describe_patches`, the one prompt builder) and
writes its tag cache entry, so a batched build writes what a serial build writes, and a build
killed mid-batch loses only that batch's tagging.

On a CPU this buys nothing (the taggers already spread one track's patches over the cores:
see benchmarks/README.md), so batches are the default only on CUDA.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from albumcover.ear.features import spread_patches

logger = logging.getLogger(__name__)

# tracks per batch on CUDA (the CLI's default there): 16 three-minute songs are ~960 patches
CUDA_BATCH_TRACKS = 16
# patches per forward pass for the builder's own taggers on CUDA (the tagger's default, 8, is
# a CPU's): ~25 MB of float32 activations per patch, so ~3 GB per pass
CUDA_BATCH_SIZE = 128

# what one track needs tagged: result name -> (tagger, the patches that tagger hears)
Requests = Mapping[str, tuple[object, np.ndarray]]


def default_batch_tracks(device_type: str) -> int:
    """Tracks per batch when none is asked for: :data:`CUDA_BATCH_TRACKS` on CUDA, else 1."""
    return CUDA_BATCH_TRACKS if device_type == "cuda" else 1


def track_requests(track, patches: np.ndarray, taggers, cache, genre_patches: int | None):
    """What a batch must tag for ``track`` (decoded to ``patches`` ``(n, 187, 96)``), as
    ``{name: (tagger, patches)}`` under the builder's cache names: the same taggers the serial
    builder would run for it (``train.dataset.captions._describe``).

    The caption tagger hears every patch unless the cache holds its result; a track with no
    category also needs the genre tagger, on the patches ``describe_patches`` gives it
    (``spread_patches(patches, genre_patches)``). Nothing when the cache answers both.
    """

    need_genre = not track.category
    tags = cache.get(track.audio, taggers.model)
    genre = cache.get(track.audio, taggers.genre_key) if need_genre else None
    if tags is not None and (genre is not None or not need_genre):
        return {}  # e.g. a manifest naming one file twice: tagged once, replayed after
    requests = {}
    if tags is None:
        requests[taggers.model] = (taggers.tagger, patches)
    if need_genre:
        requests[taggers.genre_key] = (taggers.genre_tagger, spread_patches(patches, genre_patches))
    return requests


def tag_in_batches(
    decoded: Iterable[tuple[object, object]],
    requests_of: Callable[[object, np.ndarray], Requests],
    batch_tracks: int,
    *,
    top: int = 3,
) -> Iterator[tuple[object, object, dict]]:
    """``(item, decoded, results)`` for every ``(item, decoded)`` of ``decoded``, in order.

    ``decoded``: items with their :class:`train.dataset.workers.Decoded` patches (None, or a failed
    decode, for items that need no tagger: they pass through with ``{}``).
    ``requests_of(item, patches)``: what the item needs tagged (:data:`Requests`).
    ``batch_tracks``: how many items with requests make a batch; each tagger then tags all of
    the batch's songs in one ``tag_songs`` call. Items without requests wait in the batch too,
    so the order holds. ``results``: ``{name: TagResult}`` for each of the item's requests.
    """
    if isinstance(batch_tracks, bool) or not isinstance(batch_tracks, int) or batch_tracks < 1:
        raise ValueError(f"batch_tracks must be a whole number >= 1, got {batch_tracks!r}")
    window: list[tuple[object, object, Requests]] = []
    waiting = 0
    for item, patches in decoded:
        ok = patches is not None and patches.patches is not None
        requests = requests_of(item, patches.patches) if ok else {}
        window.append((item, patches, requests))
        waiting += bool(requests)
        if waiting == batch_tracks:
            yield from _tag_window(window, top)
            window, waiting = [], 0
    yield from _tag_window(window, top)


def _tag_window(window: list, top: int) -> Iterator[tuple[object, object, dict]]:
    jobs: dict[str, tuple[object, list[int], list[np.ndarray]]] = {}
    for index, (_, _, requests) in enumerate(window):
        for name, (tagger, patches) in requests.items():
            job = jobs.setdefault(name, (tagger, [], []))
            job[1].append(index)
            job[2].append(patches)
    results: list[dict] = [{} for _ in window]
    for name, (tagger, indices, songs) in jobs.items():
        logger.debug("%s: %d tracks, %d patches", name, len(songs), sum(map(len, songs)))
        for index, result in zip(indices, tagger.tag_songs(songs, top=top), strict=True):
            results[index][name] = result
    for (item, patches, _), found in zip(window, results, strict=True):
        yield item, patches, found
