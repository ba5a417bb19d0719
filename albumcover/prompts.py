"""Prompts for album covers: song metadata + Musicnn tags -> one line of text for Stable Diffusion.

The default style, ``"study"``, is the template the fine-tuned model was trained on::

    cover album of {category} song, titled {title}, released in {date}, by {artist},
    with the following music tags {tags}

Fields left empty drop out with their clause (``titled ...``), never leaving ``titled ,``. The
same :func:`build_prompt` writes training captions and serving prompts, so they cannot drift.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from string import Formatter

log = logging.getLogger(__name__)

DEFAULT_STYLE = "study"
# the prompt's tags by default (a recipe records the values its captions were written with)
DEFAULT_TOP = 5
DEFAULT_THRESHOLD = 0.1
CLIP_MAX_TOKENS = 77  # CLIP's context: 75 tokens of text between <|startoftext|> and <|endoftext|>

DEFAULT_NEGATIVE_PROMPT = (
    "text, letters, words, typography, caption, watermark, logo, signature, frame, border, "
    "blurry, lowres, low quality, jpeg artifacts, deformed"
)


@dataclass(frozen=True)
class SongInfo:
    """What the user tells about a song. Every field is optional free text."""

    title: str = ""
    artist: str = ""
    date: str = ""
    category: str = ""


@dataclass(frozen=True)
class PromptStyle:
    """A prompt template.

    ``template`` is a comma-separated list of clauses with ``{category}``, ``{title}``, ``{date}``,
    ``{artist}`` and ``{tags}`` fields. A clause naming an empty field is dropped, unless the field
    has a ``fallbacks`` entry, which then stands in for it (``""`` just removes the word).
    ``suffix`` is appended as is (style words that do not depend on the song).
    """

    name: str
    template: str
    suffix: str = ""
    fallbacks: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        names = {f for _, f, _, _ in Formatter().parse(self.template) if f is not None}
        unknown = names - set(_FIELDS)
        if unknown:
            raise ValueError(f"style {self.name!r}: unknown template fields {sorted(unknown)}")


_FIELDS = ("category", "title", "date", "artist", "tags")

STYLES: dict[str, PromptStyle] = {
    s.name: s
    for s in (
        PromptStyle(
            "study",
            "cover album of {category} song, titled {title}, released in {date}, by {artist}, "
            "with the following music tags {tags}",
            fallbacks={"category": "a"},
        ),
        PromptStyle(
            "minimal",
            "minimalist {category} album cover, {title}, by {artist}, {tags}",
            suffix="flat colors, simple geometric shapes, negative space",
            fallbacks={"category": ""},
        ),
        PromptStyle(
            "photographic",
            "album cover photograph for a {category} song, {title}, by {artist}, {date}, {tags}",
            suffix="35mm film photo, studio lighting, sharp focus, high detail",
            fallbacks={"category": ""},
        ),
        PromptStyle(
            "illustrated",
            "illustrated album cover art for a {category} song, titled {title}, by {artist}, "
            "{tags}",
            suffix="digital illustration, vibrant colors, detailed artwork",
            fallbacks={"category": ""},
        ),
        PromptStyle(
            "retro",
            "vintage {category} record sleeve, {title}, by {artist}, released in {date}, {tags}",
            suffix="retro print, grainy texture, faded colors",
            fallbacks={"category": ""},
        ),
    )
}

# The genre categories a user picks from (the study used about twenty).
CATEGORIES: tuple[str, ...] = (
    "rock",
    "pop",
    "alternative",
    "indie",
    "metal",
    "punk",
    "electronic",
    "dance",
    "hip hop",
    "r&b",
    "soul",
    "funk",
    "jazz",
    "blues",
    "folk",
    "country",
    "reggae",
    "latin",
    "classical",
    "ambient",
    "experimental",
    "world",
    "soundtrack",
)

# Musicnn genre labels (MSD_musicnn, plus MTT_musicnn's few genres), normalised by _label_key,
# -> category. Non-genre labels (eras, moods, voices, instruments) are absent on purpose.
_GENRE_CATEGORY: dict[str, str] = {
    "rock": "rock",
    "classic rock": "rock",
    "hard rock": "rock",
    "progressive rock": "rock",
    "pop": "pop",
    "easy listening": "pop",
    "alternative": "alternative",
    "alternative rock": "alternative",
    "indie": "indie",
    "indie rock": "indie",
    "indie pop": "indie",
    "metal": "metal",
    "heavy metal": "metal",
    "punk": "punk",
    "electronic": "electronic",
    "electronica": "electronic",
    "electro": "electronic",
    "techno": "electronic",
    "dance": "dance",
    "house": "dance",
    "hip hop": "hip hop",
    "rnb": "r&b",
    "soul": "soul",
    "funk": "funk",
    "jazz": "jazz",
    "blues": "blues",
    "folk": "folk",
    "country": "country",
    "classical": "classical",
    "classic": "classical",
    "opera": "classical",
    "ambient": "ambient",
    "chillout": "ambient",
    "new age": "ambient",
    "experimental": "experimental",
    "indian": "world",
}

# Near-synonyms in the MTT and MSD vocabularies -> the one name the prompt uses. The strongest
# score of a group survives under the canonical name, so "female" and "woman" do not take two of
# the few tag slots. "no vocals" becomes "instrumental": a negation in a diffusion prompt tends
# to paint what it negates.
_TAG_SYNONYMS: dict[str, tuple[str, ...]] = {
    "instrumental": ("no vocal", "no vocals", "no voice", "instrumental"),
    "vocals": ("vocal", "vocals", "voice", "singing"),
    "female vocals": (
        "female",
        "woman",
        "female vocal",
        "female voice",
        "female vocalist",
        "female vocalists",
    ),
    "male vocals": ("male", "man", "male vocal", "male voice", "male vocalist", "male vocalists"),
    "classical": ("classic", "classical"),
    "beats": ("beat", "beats"),
    "choir": ("choir", "choral"),
    "electronic": ("electronic", "electronica", "electro"),
    "chill": ("chill", "chillout"),
    "hip hop": ("hip hop",),
    "r&b": ("rnb",),
}
_CANONICAL_TAG = {alias: name for name, aliases in _TAG_SYNONYMS.items() for alias in aliases}


def tables_fingerprint() -> str:
    """A short hash of the category list and the genre and synonym tables: captions written with
    other tables are other words, so a model's caption recipe records which ones it saw."""

    tables = [CATEGORIES, sorted(_GENRE_CATEGORY.items()), sorted(_TAG_SYNONYMS.items())]
    return hashlib.sha256(json.dumps(tables).encode()).hexdigest()[:12]


def _label_key(label: str) -> str:
    # "Hip-Hop" -> "hip hop", "Mellow" -> "mellow", "female  vocal " -> "female vocal"
    return " ".join(label.replace("-", " ").replace("_", " ").casefold().split())


def clean_text(text: str) -> str:
    """One line of user text: NFC, whitespace runs -> one space, control characters removed.

    Letters of any script are kept ("Björk", "坂本龍一").
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}: {text!r}")
    text = unicodedata.normalize("NFC", text)
    # Cc (controls), Cs (lone surrogates) and Co (private use) never belong in a
    # prompt; format characters (Cf: zero-width joiners in emoji and Indic scripts) stay.
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cs", "Co")
    )
    return " ".join(text.split())


def select_tags(
    scores: Mapping[str, float], top: int | None = None, threshold: float | None = None
) -> list[str]:
    """The prompt's tags: at most ``top`` labels whose score is at least ``threshold``.

    Args:
        scores: label -> score in [0, 1] (e.g. ``TagResult.scores``, a mean over patches).
        top: the most tags kept (>= 0); None: :data:`DEFAULT_TOP`.
        threshold: the least score kept; None: :data:`DEFAULT_THRESHOLD`.

    Returns:
        Canonical lower-case tag names, best first. Near-synonyms (``female``, ``woman``,
        ``female vocalists``, ...) are merged under one name with the strongest score.
    """
    top = DEFAULT_TOP if top is None else top
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise ValueError(f"top must be an integer >= 0, got {top!r}")
    if not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    best: dict[str, float] = {}
    for label, score in scores.items():
        score = float(score)
        if not math.isfinite(score):
            raise ValueError(f"score of tag {label!r} is not a finite number: {score!r}")
        key = _label_key(clean_text(label))
        if not key:
            continue
        name = _CANONICAL_TAG.get(key, key)
        if score > best.get(name, -math.inf):
            best[name] = score
    ranked = sorted(best.items(), key=lambda item: -item[1])  # stable: ties keep label order
    return [name for name, score in ranked if score >= threshold][:top]


def infer_category(genre_scores: Mapping[str, float], default: str = "") -> str:
    """The category of the best-scoring genre label, e.g. from MSD_musicnn's ``TagResult.scores``.

    Labels that are not genres (eras, moods, voices) are ignored; MTT_musicnn's genre labels
    (``classical``, ``techno``, ``new age``, ...) count too. Returns one of :data:`CATEGORIES`, or
    ``default`` when no label in ``genre_scores`` is a genre.
    """
    best, best_score = default, -math.inf
    for label, score in genre_scores.items():
        category = _GENRE_CATEGORY.get(_label_key(label))
        if category is not None and float(score) > best_score:
            best, best_score = category, float(score)
    return best


# --- prompt --------------------------------------------------------------------------------

_YEAR = re.compile(r"\b(1[5-9]\d\d|2[01]\d\d)\b")
_KEEP_TAGS = 2  # tags kept until every cheaper cut is done
_MIN_TEXT = 24  # characters of title/artist kept until every cheaper cut is done
_ELLIPSIS = "…"


def _format(style: PromptStyle, fields: Mapping[str, str]) -> str:
    clauses = []
    for clause in style.template.split(", "):
        names = [f for _, f, _, _ in Formatter().parse(clause) if f is not None]
        values = {}
        for name in names:
            value = fields[name] or style.fallbacks.get(name)
            if value is None:
                break
            values[name] = value
        else:
            clauses.append(" ".join(clause.format(**values).split()))
    if style.suffix:
        clauses.append(style.suffix)
    return ", ".join(c for c in clauses if c)


def _truncate(text: str, chars: int) -> str:
    """``text`` cut to about ``chars`` characters (at a word break when one is near) plus '…'."""
    if len(text) <= chars:
        return text
    if chars <= 0:
        return ""
    cut = text[:chars]
    space = cut.rfind(" ")
    if space >= chars * 2 // 3:  # a word break in the last third: cut there, not mid-word
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + _ELLIPSIS


def token_counter(tokenizer) -> Callable[[str], int]:
    """A ``count_tokens`` for :func:`build_prompt` from a Hugging Face tokenizer (e.g. a
    pipeline's CLIP tokenizer): tokens of a text including the start and end tokens."""

    def count(text: str) -> int:
        return len(tokenizer(text, truncation=False, verbose=False).input_ids)

    return count


def removed_parts(full: str, short: str) -> list[str]:
    """The runs of words of ``full`` that are missing from ``short`` (a prompt before and after
    :func:`build_prompt` shortened it), to tell the user what the token budget left out."""

    a, b = full.split(), short.split()
    parts = []
    for op, i1, i2, _, _ in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("delete", "replace") and i2 > i1:
            parts.append(" ".join(a[i1:i2]).strip(" ,"))
    return [p for p in parts if p]


def build_prompt(
    song: SongInfo,
    tags: Sequence[str],
    style: str | PromptStyle = DEFAULT_STYLE,
    count_tokens: Callable[[str], int] | None = None,
    max_tokens: int = CLIP_MAX_TOKENS,
) -> str:
    """Write the prompt for a song in a style, within the text encoder's token budget.

    Args:
        song: title, artist, date, category; empty fields drop out with their clause. A date
            that contains a year (1500-2199) is written as that year alone.
        tags: tag names, best first (e.g. from :func:`select_tags`).
        style: a key of :data:`STYLES` or a :class:`PromptStyle`.
        count_tokens: tokens a text takes *including* the start and end tokens, counted by the
            model's own tokenizer(s) (e.g. ``CoverGenerator.count_tokens``); None: no tokenizer
            at hand, so nothing is counted and the prompt is returned whole (the generator
            fits it to its model when painting, see :func:`fit_text`).
        max_tokens: the budget; 77 is CLIP's whole context (75 text tokens + 2 special).

    Over budget, the least telling parts go first, until the prompt fits:

    1. the weakest tags, from the end, down to the top two;
    2. the release date;
    3. a long title, then a long artist name, cut (with "…") down to 24 characters;
    4. the remaining tags, weakest first;
    5. the title, then the artist, then the category, cut further and finally dropped.

    The category and the artist survive longest; the top two tags outlast the date and the tail
    of a long title or artist name.

    Raises:
        ValueError: unknown style, ``tags`` given as one string, a bad ``max_tokens``, or a
            style whose fixed words alone exceed ``max_tokens``.
    """
    if isinstance(style, str):
        if style not in STYLES:
            raise ValueError(f"unknown prompt style {style!r}; choose one of {sorted(STYLES)}")
        style = STYLES[style]
    if isinstance(tags, str):
        raise ValueError(f"tags must be a sequence of tag names, not one string: {tags!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3:
        raise ValueError(f"max_tokens must be an integer >= 3, got {max_tokens!r}")
    count = count_tokens

    cleaned = {}
    for name in ("title", "artist", "date", "category"):
        try:
            cleaned[name] = clean_text(getattr(song, name))
        except ValueError as e:
            raise ValueError(f"song {name}: {e}") from e
    # The release year, not the day: "released in 2024" whether the user typed "2024-05-01" or a
    # file's tag says "2024-05-01T00:00:00", so serving prompts match the training captions.
    year = _YEAR.search(cleaned["date"])
    if year:
        cleaned["date"] = year.group(0)
    song = SongInfo(**cleaned)
    seen: set[str] = set()
    tag_list: list[str] = []
    for tag in tags:
        tag = clean_text(tag)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            tag_list.append(tag)

    def render(s: SongInfo, t: Sequence[str]) -> str:
        return _format(style, {**vars(s), "tags": ", ".join(t)})

    def fits(s: SongInfo, t: Sequence[str]) -> bool:
        return count is None or count(render(s, t)) <= max_tokens

    def shrink(s: SongInfo, name: str, floor: int) -> SongInfo:
        """Cut field ``name`` to the longest prefix that fits, but to no fewer than ``floor``
        characters (then the next cut goes on)."""
        text = getattr(s, name)
        if len(text) <= floor:
            return s
        lo, hi = floor, len(text) - 1  # binary search the longest fitting length in [lo, hi]
        if not fits(replace(s, **{name: _truncate(text, lo)}), tag_list):
            return replace(s, **{name: _truncate(text, floor)})
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(replace(s, **{name: _truncate(text, mid)}), tag_list):
                lo = mid
            else:
                hi = mid - 1
        return replace(s, **{name: _truncate(text, lo)})

    if fits(song, tag_list):
        return render(song, tag_list)
    original = render(song, tag_list)

    while len(tag_list) > _KEEP_TAGS and not fits(song, tag_list):
        tag_list.pop()
    if not fits(song, tag_list):
        song = replace(song, date="")
    for name in ("title", "artist"):
        if not fits(song, tag_list):
            song = shrink(song, name, _MIN_TEXT)
    while tag_list and not fits(song, tag_list):
        tag_list.pop()
    for name in ("title", "artist", "category"):
        if not fits(song, tag_list):
            song = shrink(song, name, 1)
        if not fits(song, tag_list):
            song = replace(song, **{name: ""})
    prompt = render(song, tag_list)
    if count(prompt) > max_tokens:
        raise ValueError(
            f"prompt style {style.name!r} needs {count(prompt)} tokens without any song "
            f"details, over the budget of {max_tokens}: {prompt!r}"
        )
    log.info("prompt shortened to fit %d tokens: %r -> %r", max_tokens, original, prompt)
    return prompt


@dataclass(frozen=True)
class FittedText:
    """A text cut to a token budget: ``text`` is what the model reads, ``cut`` the words left
    out (empty when it fitted), ``tokens`` what ``text`` takes and ``max_tokens`` the budget."""

    text: str
    cut: str
    tokens: int
    max_tokens: int

    @property
    def was_cut(self) -> bool:
        return bool(self.cut)


def fit_text(text: str, count_tokens: Callable[[str], int], max_tokens: int) -> FittedText:
    """Cut ``text`` at a word break to the longest start that fits ``max_tokens`` tokens.

    For text a user typed (an edited prompt, a negative prompt): the text encoder would silently
    drop whatever lies past its context, so the cut is made here, where it can be shown. Text
    that fits is returned unchanged. ``count_tokens`` counts including the start/end tokens.

    Raises:
        ValueError: a bad ``max_tokens`` or not text.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}: {text!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 3:
        raise ValueError(f"max_tokens must be an integer >= 3, got {max_tokens!r}")
    text = text.strip()
    tokens = count_tokens(text)
    if tokens <= max_tokens:
        return FittedText(text, "", tokens, max_tokens)
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    if not ends or count_tokens(text[: ends[0]]) > max_tokens:
        ends = list(range(1, len(text) + 1))  # one long "word": cut between characters
    if count_tokens(text[: ends[0]]) > max_tokens:
        return FittedText("", text, count_tokens(""), max_tokens)
    lo, hi = 0, len(ends) - 1  # the largest i with text[:ends[i]] fitting; ends[-1] does not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(text[: ends[mid]]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    kept = text[: ends[lo]].rstrip(" ,;:")
    cut = text[ends[lo] :].strip()
    log.info("text cut to %d tokens, left out: %r", max_tokens, cut)
    return FittedText(kept, cut, count_tokens(kept), max_tokens)
