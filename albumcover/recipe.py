"""The caption recipe: how a model's training captions were written, saved beside the model.

A fine-tuned model only understands prompts written the way its captions were. The dataset
builder writes a :class:`CaptionRecipe` into the dataset folder, training copies it into the model
folder (and its model card), and the app and CLI read it from the served model and write prompts
exactly that way. A model without a recipe is served with :data:`DEFAULT_RECIPE`.

This module is the one source of the tagging defaults (caption tagger, genre tagger, top-N,
threshold): the app, the CLI and the builder take them from here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from .files import write_atomic
from .prompts import DEFAULT_STYLE, DEFAULT_THRESHOLD, DEFAULT_TOP, STYLES, tables_fingerprint

RECIPE_FILE = "albumcover_recipe.json"
RECIPE_FORMAT = 2  # 2: genre_patches (format 1 recipes ran the genre tagger on every patch)
DEFAULT_TAGGER = "MTT_musicnn"  # its tags (instruments, moods, genres) go into the prompt
GENRE_TAGGER = "MSD_musicnn"  # its labels are genres: the category is inferred from them
# The genre tagger hears this many 3 s patches spread evenly over the song (30 s: the length
# of the Million Song Dataset previews MSD_musicnn was trained on), not every patch: the
# category is one word per song, and a 3-minute song's Analyze then costs 1.17 networks
# instead of 2 (benchmarks/README.md, "Analyze").
GENRE_PATCHES = 10
CAPTION_MODES = ("prompt", "category", "none")
CATEGORY_CAPTION = "cover album of {category} song"  # caption_mode "category"


class RecipeError(ValueError):
    """A recipe file that cannot be read, or a setting that contradicts the model's recipe."""


# field -> (types it takes, said in words); top, threshold, genre_patches have their own checks
_FIELD_TYPES = (
    ("style", str, "text"),
    ("template", str, "text"),
    ("caption_tagger", str, "text"),
    ("genre_tagger", str, "text"),
    ("base_model", (str, type(None)), "text or null"),
    ("tables_version", str, "text"),
    ("caption_mode", str, "text"),
    ("format", int, "a whole number"),
)


@dataclass(frozen=True)
class CaptionRecipe:
    """How captions are written: the prompt style (and its template), the two taggers, how many
    tags (``top`` tags scoring at least ``threshold``), the base model whose tokenizer counted
    the caption budget, the version of the synonym/category tables, and the caption mode
    (``prompt``: the full caption; ``category``: only ``cover album of {category} song``;
    ``none``: empty captions, an unconditional fine-tune). ``genre_patches``: how many patches
    the genre tagger hears (:func:`albumcover.ear.features.spread_patches`; None: every patch)."""

    style: str = DEFAULT_STYLE
    template: str = STYLES[DEFAULT_STYLE].template
    caption_tagger: str = DEFAULT_TAGGER
    genre_tagger: str = GENRE_TAGGER
    genre_patches: int | None = GENRE_PATCHES
    top: int = DEFAULT_TOP
    threshold: float = DEFAULT_THRESHOLD
    base_model: str | None = None
    tables_version: str = tables_fingerprint()
    caption_mode: str = "prompt"
    format: int = RECIPE_FORMAT

    def __post_init__(self):
        for name, kinds, said in _FIELD_TYPES:  # before any comparison a wrong type breaks
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise RecipeError(
                    f"recipe {name} must be {said}, got {type(value).__name__} {value!r:.60}"
                )
        if self.style not in STYLES:
            raise RecipeError(f"recipe style {self.style!r} is not one of {sorted(STYLES)}")
        if self.caption_mode not in CAPTION_MODES:
            raise RecipeError(f"caption_mode {self.caption_mode!r} is not one of {CAPTION_MODES}")
        top = self.top
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise RecipeError(f"recipe top must be a whole number >= 1, got {top!r}")
        n = self.genre_patches
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise RecipeError(
                f"recipe genre_patches must be None or a whole number >= 1, got {n!r}"
            )
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t <= 1:
            raise RecipeError(f"recipe threshold must be a number in [0, 1], got {t!r}")

    @classmethod
    def for_style(cls, style: str = DEFAULT_STYLE, **kwargs) -> CaptionRecipe:
        """A recipe for ``style`` (its template filled in) and any other field in ``kwargs``."""
        if style not in STYLES:
            raise RecipeError(f"unknown style {style!r}; choose one of {sorted(STYLES)}")
        return cls(style=style, template=STYLES[style].template, **kwargs)

    def caption(self, prompt: str, category: str) -> str:
        """The caption (or serving prompt) this recipe writes for a song whose full prompt is
        ``prompt`` and whose category is ``category``: ``prompt`` mode keeps the prompt,
        ``category`` mode writes ``cover album of {category} song`` (``a song`` with no
        category), ``none`` mode an empty caption."""
        if self.caption_mode == "prompt":
            return prompt
        if self.caption_mode == "category":
            return CATEGORY_CAPTION.format(category=category.strip() or "a")
        return ""

    @property
    def unconditional(self) -> bool:
        """True for a model fine-tuned on empty captions: it is served an empty prompt."""
        return self.caption_mode == "none"

    def with_base_model(self, base_model: str | None) -> CaptionRecipe:
        return replace(self, base_model=base_model)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "recipe") -> CaptionRecipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeError(f"{where}: not valid JSON ({e})") from e
        if not isinstance(data, dict):
            raise RecipeError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format", RECIPE_FORMAT)
        if isinstance(version, bool) or not isinstance(version, int):
            raise RecipeError(
                f"{where}: recipe format must be a whole number, got "
                f"{type(version).__name__} {version!r:.60}"
            )
        if version > RECIPE_FORMAT:
            raise RecipeError(
                f"{where}: recipe format {data['format']} is newer than this albumcover reads "
                f"({RECIPE_FORMAT}); upgrade albumcover"
            )
        if version < 2:
            data.setdefault("genre_patches", None)  # format 1: the genre tagger heard every patch
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{where}: unknown recipe fields {unknown}")
        try:
            return cls(**data)
        except TypeError as e:
            raise RecipeError(f"{where}: {e}") from e

    def fingerprint(self) -> str:
        """A short hash of the recipe, e.g. for a tag cache key."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the recipe into ``folder`` (created) as :data:`RECIPE_FILE`; return its path."""

        path = Path(folder) / RECIPE_FILE
        write_atomic(path, self.to_json())
        return path


DEFAULT_RECIPE = CaptionRecipe()


def read_recipe(folder: str | os.PathLike) -> CaptionRecipe | None:
    """The recipe saved in a dataset or model folder, or None when it has none."""
    path = Path(folder) / RECIPE_FILE
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"cannot read {path}: {e}") from e
    return CaptionRecipe.from_json(text, where=str(path))


def load_recipe(model: str | os.PathLike, local_files_only: bool = False) -> CaptionRecipe | None:
    """The recipe of a served model: a local folder, a single checkpoint file (the recipe beside
    it), or a Hub repo id (None when it has none).

    Network failures for a Hub id count as "no recipe" only when the file is missing; any other
    error is raised, so a model is never silently prompted the wrong way.
    """
    if os.path.isdir(os.fspath(model)):
        return read_recipe(model)
    if os.path.isfile(os.fspath(model)):  # a single-file checkpoint: the recipe lies beside it
        return read_recipe(Path(model).parent)
    if os.fspath(model).startswith((".", "/", "~", "\\")):  # a local path that is not there
        return None  # (loading the model itself says so)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        path = hf_hub_download(os.fspath(model), RECIPE_FILE, local_files_only=local_files_only)
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
    return read_recipe(Path(path).parent)


def check_served_recipe(
    recipe: CaptionRecipe, *, caption_tagger: str | None = None, style: str | None = None
) -> list[str]:
    """Check how an operator asked to serve a model against the model's recipe.

    ``caption_tagger`` / ``style``: what the operator set explicitly (e.g. ALBUMCOVER_TAGGER,
    ``--tagger``, ``--style``; None: not set). A setting that contradicts the recipe is refused:
    the model would be prompted in words it never saw in training.

    Returns:
        Warnings to report at start-up: differences this albumcover cannot undo (its style
        template or synonym/category tables changed since the captions were written).

    Raises:
        RecipeError: a contradicting setting, or a style this albumcover does not have.
    """
    for what, asked, recorded in (
        ("caption tagger", caption_tagger, recipe.caption_tagger),
        ("prompt style", style, recipe.style),
    ):
        if asked is not None and asked != recorded:
            raise RecipeError(
                f"the model's captions were written with {what} {recorded!r}, but {asked!r} was "
                f"asked for; unset it to serve the model as it was trained (its "
                f"{RECIPE_FILE} says so)"
            )
    warnings = []
    if recipe.template != STYLES[recipe.style].template:
        warnings.append(
            f"the model was trained on style {recipe.style!r} as {recipe.template!r}; this "
            f"albumcover writes it as {STYLES[recipe.style].template!r}"
        )
    if recipe.tables_version != tables_fingerprint():
        warnings.append(
            f"the model's captions used tag tables {recipe.tables_version}; this albumcover "
            f"has {tables_fingerprint()} (some tag names or categories may read differently)"
        )
    return warnings
