"""One track's caption: the taggers a build loads, and the prompt written from fresh or cached
tagger outputs by :func:`albumcover.pipeline.describe_patches`, the app's one prompt builder."""

from __future__ import annotations

import numpy as np

from albumcover.ear.tagger import DEFAULT_BATCH_SIZE, Tagger
from albumcover.pipeline import describe_patches
from albumcover.prompts import SongInfo
from albumcover.recipe import CaptionRecipe

from .batching import CUDA_BATCH_SIZE
from .tagcache import TagCache, _ReplayTagger
from .tracks import Track


def caption_recipe(
    style: str,
    model: str,
    genre_model: str,
    top: int,
    threshold: float,
    base_model: str | None,
    genre_patches: int | None,
) -> CaptionRecipe:
    """How a build's captions were written: it travels with the data (and, through training,
    with the model), so the app prompts the model the same way."""
    return CaptionRecipe.for_style(
        style,
        caption_tagger=model,
        genre_tagger=genre_model,
        genre_patches=genre_patches,
        top=top,
        threshold=threshold,
        base_model=base_model,
    )


class _Taggers:
    """The caption tagger, and the genre tagger loaded on first need."""

    def __init__(self, model, genre_model, device, tagger, genre_tagger, genre_patches):
        self.model = tagger.model_name if tagger is not None else model
        self.genre_model = genre_tagger.model_name if genre_tagger is not None else genre_model
        # the genre scores depend on the patches heard: cached under a name that says which
        self.genre_key = (
            self.genre_model
            if genre_patches is None
            else f"{self.genre_model}.spread{genre_patches}"
        )
        self._device = device
        self._tagger = tagger
        self._genre_tagger = genre_tagger

    @property
    def device_type(self) -> str:
        """Where the taggers run ("cpu", "cuda"): a given tagger's device, else ``device``,
        else CUDA when available (as Tagger.load picks)."""
        given = self._tagger if self._tagger is not None else self._genre_tagger
        if given is not None:
            return getattr(getattr(given, "device", None), "type", "cpu")
        import torch

        if self._device is None:
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            return torch.device(self._device).type
        except (RuntimeError, TypeError, ValueError):
            return "cpu"  # Tagger.load reports the bad device when a tagger is needed

    @property
    def tagger(self):
        if self._tagger is None:
            self._tagger = self._load(self.model)
        return self._tagger

    @property
    def genre_tagger(self):
        if self._genre_tagger is None:
            self._genre_tagger = self._load(self.genre_model)
        return self._genre_tagger

    def _load(self, model: str):
        # a GPU wants far more patches per forward pass than a CPU's default
        cuda = self.device_type == "cuda"
        size = CUDA_BATCH_SIZE if cuda else DEFAULT_BATCH_SIZE
        return Tagger.load(model, device=self._device, batch_size=size)


def _cache_answers(track: Track, taggers: _Taggers, cache: TagCache) -> bool:
    """Whether the tag cache holds every tagger output this track's caption needs."""
    if cache.get(track.audio, taggers.model) is None:
        return False
    return bool(track.category) or cache.get(track.audio, taggers.genre_key) is not None


def _describe(track: Track, taggers: _Taggers, cache: TagCache, decoded, tagged, **options):
    """Caption one track; returns (SongDescription, whether a tagger ran).

    ``decoded``: the track's :class:`train.dataset.workers.Decoded` patches, None when the cache
    answers. ``tagged``: results a batch already tagged for it (:mod:`train.dataset.batching`), by
    cache name; the taggers run here for the others. Raises AudioError for a track that could
    not be decoded.
    """

    song = SongInfo(
        title=track.tags.title,
        artist=track.tags.artist,
        date=track.tags.date,  # build_prompt writes its year: "released in 2004"
        category=track.category,
    )
    need_genre = not track.category
    tags = cache.get(track.audio, taggers.model)
    genre = cache.get(track.audio, taggers.genre_key) if need_genre else None
    if tags is not None and (genre is not None or not need_genre):
        nothing = np.zeros((0, 0, 0), dtype=np.float32)  # never read: both taggers replay
        replay_genre = _ReplayTagger(genre) if genre is not None else None
        return describe_patches(nothing, song, _ReplayTagger(tags), replay_genre, **options), False

    decoded.raise_error()
    tags = tags if tags is not None else tagged.get(taggers.model)
    tagger = _ReplayTagger(tags) if tags is not None else taggers.tagger
    genre = tagged.get(taggers.genre_key)  # (a cached genre is heard again, as ever)
    genre_tagger = None
    if need_genre:
        genre_tagger = _ReplayTagger(genre) if genre is not None else taggers.genre_tagger
    # decoded once, its patches shared by both taggers
    description = describe_patches(decoded.patches, song, tagger, genre_tagger, **options)
    results = {taggers.model: description.tags}
    if description.genre is not None:
        results[taggers.genre_key] = description.genre
    cache.put(track.audio, results)
    return description, True
