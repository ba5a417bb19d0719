"""The one end-to-end path: audio + metadata -> tags -> prompt -> covers.

The app, the CLI and the dataset builder all go through :func:`describe_song`, so a prompt seen in
training is written exactly as the app writes it at serving time (no train/serve skew).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .ear.audio import load_audio
from .ear.features import song_patches, spread_patches
from .paint.generator import GenerationSettings
from .prompts import (
    CLIP_MAX_TOKENS,
    SongInfo,
    build_prompt,
    infer_category,
    removed_parts,
    select_tags,
)
from .recipe import DEFAULT_RECIPE, CaptionRecipe

if TYPE_CHECKING:
    from .ear.tagger import Tagger, TagResult
    from .paint.generator import Cover, CoverGenerator, GenerationSettings


_NO_BUDGET = 1 << 30  # tokens: "never shorten"


@dataclass(frozen=True)
class SongDescription:
    """What the taggers heard in a song and the prompt written from it.

    ``category`` is the user's when given, else inferred from ``genre`` (MSD_musicnn scores),
    else empty. ``tag_names`` are the tags that went into the prompt (synonyms merged, best first).
    ``full_prompt`` is the prompt before it was shortened to the token budget ("" if it fit).
    """

    song: SongInfo
    tags: TagResult
    genre: TagResult | None
    category: str
    tag_names: list[str]
    prompt: str
    full_prompt: str = ""

    @property
    def cut(self) -> list[str]:
        """The parts of the full prompt the token budget left out (empty when nothing was)."""
        return removed_parts(self.full_prompt, self.prompt) if self.full_prompt else []

    @property
    def category_inferred(self) -> bool:
        """True when the category came from the audio rather than from the user."""
        return bool(self.category) and not self.song.category


def describe_song(
    audio: str | Path | np.ndarray,
    song: SongInfo,
    tagger: Tagger,
    genre_tagger: Tagger | None = None,
    *,
    style: str | None = None,
    top: int | None = None,
    threshold: float | None = None,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = CLIP_MAX_TOKENS,
    recipe: CaptionRecipe | None = None,
) -> SongDescription:
    """Tag a song and write its cover prompt.

    Args:
        audio: a file path, or a (samples,) float32 mono signal at 16 kHz. A path is decoded once
            and its log-mel patches shared by both taggers.
        song: title, artist, release date and optional category (empty fields drop out).
        tagger: the tagger whose tags go into the prompt (MTT_musicnn by default in the app).
        genre_tagger: a tagger with genre labels (MSD_musicnn) used to infer the category when
            ``song.category`` is empty, from the recipe's ``genre_patches`` patches spread over
            the song; None leaves the category empty in that case.
        style: a key of :data:`albumcover.prompts.STYLES`.
        top, threshold: at most ``top`` tags whose mean score is at least ``threshold``.
        count_tokens, max_tokens: the model's token counter and budget (e.g.
            ``CoverGenerator.count_tokens`` and ``.max_tokens``); None: not counted.
        recipe: how the served model's captions were written (:mod:`albumcover.recipe`): its
            style, top, threshold and caption mode, used where the three arguments above are
            None, and how many patches the genre tagger hears. Default:
            :data:`~albumcover.recipe.DEFAULT_RECIPE`.

    Raises:
        albumcover.ear.audio.AudioError: the audio cannot be decoded or is silent.
        ValueError: an unknown style or bad parameter.
    """
    if not isinstance(audio, np.ndarray):
        audio = load_audio(audio)

    # The log-mel patches are computed once and fed to both networks.
    patches = song_patches(audio)
    return describe_patches(
        patches,
        song,
        tagger,
        genre_tagger,
        style=style,
        top=top,
        threshold=threshold,
        count_tokens=count_tokens,
        max_tokens=max_tokens,
        recipe=recipe,
    )


def describe_patches(
    patches: np.ndarray,
    song: SongInfo,
    tagger: Tagger,
    genre_tagger: Tagger | None = None,
    *,
    style: str | None = None,
    top: int | None = None,
    threshold: float | None = None,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = CLIP_MAX_TOKENS,
    recipe: CaptionRecipe | None = None,
) -> SongDescription:
    """:func:`describe_song` from a song's log-mel patches ``(n_patches, 187, 96)`` float32
    (:func:`albumcover.ear.features.song_patches`), e.g. computed in another process.

    The taggers need only ``tag_patches(patches, top=...)``; the arguments are describe_song's.
    """
    recipe = recipe or DEFAULT_RECIPE
    style = recipe.style if style is None else style
    top = recipe.top if top is None else top
    threshold = recipe.threshold if threshold is None else threshold
    tags = tagger.tag_patches(patches, top=top)
    genre = None
    category = song.category.strip()
    if not category and genre_tagger is not None:
        # the category is one word per song: the recipe's sample of patches decides it
        genre = genre_tagger.tag_patches(spread_patches(patches, recipe.genre_patches), top=top)
        category = infer_category(genre.scores)
    tag_names = select_tags(tags.scores, top=top, threshold=threshold)
    song_with_category = replace(song, category=category)
    prompt = build_prompt(
        song_with_category,
        tag_names,
        style=style,
        count_tokens=count_tokens,
        max_tokens=max_tokens,
    )
    # the same prompt with no budget: what the user would have got, to show them what was cut
    full = build_prompt(song_with_category, tag_names, style=style, max_tokens=_NO_BUDGET)
    full = "" if full == prompt else recipe.caption(full, category)
    prompt = recipe.caption(prompt, category)
    return SongDescription(song, tags, genre, category, tag_names, prompt, full)


def make_covers(
    description_or_prompt: SongDescription | str,
    generator: CoverGenerator,
    settings: GenerationSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
    allow_empty_prompt: bool = False,
) -> list[Cover]:
    """Paint covers for a described song, or for a (user-edited) prompt.

    ``allow_empty_prompt``: paint an empty prompt, for a model fine-tuned on empty captions
    (its recipe's ``caption_mode`` is ``none``: :attr:`CaptionRecipe.unconditional`).

    Returns ``settings.num_images`` covers, each a PIL image with the seed that reproduces it.
    """

    prompt = (
        description_or_prompt.prompt
        if isinstance(description_or_prompt, SongDescription)
        else description_or_prompt
    )
    return generator.generate(
        prompt,
        settings or GenerationSettings(),
        progress=progress,
        allow_empty_prompt=allow_empty_prompt,
    )
