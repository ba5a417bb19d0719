import itertools

import pytest

from albumcover.ear.musicnn import MSD_LABELS, MTT_LABELS
from albumcover.prompts import (
    _CANONICAL_TAG,
    _GENRE_CATEGORY,
    CATEGORIES,
    CLIP_MAX_TOKENS,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_STYLE,
    STYLES,
    PromptStyle,
    SongInfo,
    build_prompt,
    clean_text,
    fit_text,
    infer_category,
    select_tags,
)
from tests.tiny_models import save_tiny_sd

SONG = SongInfo(title="Bohemian Rhapsody", artist="Queen", date="1975", category="rock")
TAGS = ["rock", "piano", "male vocals"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The tiny pipeline's CLIP tokenizer, loaded from its saved folder."""
    from transformers import CLIPTokenizer

    path = save_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))
    return CLIPTokenizer.from_pretrained(path / "tokenizer")


@pytest.fixture(scope="module")
def count(tokenizer):
    return lambda text: len(tokenizer(text, truncation=False).input_ids)


def test_the_study_template_exactly():
    assert build_prompt(SONG, TAGS) == (
        "cover album of rock song, titled Bohemian Rhapsody, released in 1975, by Queen, "
        "with the following music tags rock, piano, male vocals"
    )
    assert DEFAULT_STYLE == "study"


@pytest.mark.parametrize("with_tags", [True, False])
@pytest.mark.parametrize(
    "present",
    list(itertools.product([False, True], repeat=4)),
    ids=lambda p: "".join("01"[x] for x in p),
)
def test_empty_fields_drop_out_cleanly(present, with_tags):
    fields = dict(zip(("title", "artist", "date", "category"), present, strict=True))
    song = SongInfo(**{name: getattr(SONG, name) if on else "" for name, on in fields.items()})
    prompt = build_prompt(song, TAGS if with_tags else [])

    assert prompt == prompt.strip() and "  " not in prompt
    assert ", ," not in prompt and ",," not in prompt and not prompt.endswith(",")
    for clause in ("titled ,", "by ,", "in ,", "of  song", "tags ,"):
        assert clause not in prompt
    expected = ["cover album of rock song" if fields["category"] else "cover album of a song"]
    if fields["title"]:
        expected.append("titled Bohemian Rhapsody")
    if fields["date"]:
        expected.append("released in 1975")
    if fields["artist"]:
        expected.append("by Queen")
    if with_tags:
        expected.append("with the following music tags rock, piano, male vocals")
    assert prompt == ", ".join(expected)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_formats(style):
    full = build_prompt(SONG, TAGS, style=style)
    for part in ("Bohemian Rhapsody", "Queen", "rock", "piano, male vocals"):
        assert part in full
    assert "{" not in full and "}" not in full
    assert full.endswith(STYLES[style].suffix)
    empty = build_prompt(SongInfo(), [], style=style)
    assert empty and "{" not in empty and ", ," not in empty and "  " not in empty
    assert not empty.startswith(",") and not empty.endswith(",")


def test_custom_style_and_bad_style():
    style = PromptStyle("mine", "art for {title}, {tags}", suffix="oil painting")
    assert build_prompt(SONG, TAGS, style=style) == (
        "art for Bohemian Rhapsody, rock, piano, male vocals, oil painting"
    )
    assert build_prompt(SongInfo(), [], style=style) == "oil painting"
    with pytest.raises(ValueError, match="nope"):
        build_prompt(SONG, TAGS, style="nope")
    with pytest.raises(ValueError, match="album"):
        PromptStyle("bad", "cover of {album}")


def test_user_text_is_cleaned_and_unicode_kept():
    song = SongInfo(
        title="  Jo\u0308ga\t\n(live)\x00\x07  ",  # decomposed ö, tab, newline, NUL, BEL
        artist="Björk\u200d",  # a zero-width joiner (format character) stays
        date=" \r\n ",
        category="坂本龍一",
    )
    prompt = build_prompt(song, ["  ambient\n", "", "Ambient", "piano"])
    assert prompt == (
        "cover album of 坂本龍一 song, titled Jöga (live), by Björk\u200d, "
        "with the following music tags ambient, piano"
    )
    assert clean_text("a\u2028b\u00a0c\ue000") == "a b c"  # line separator, nbsp, private use


@pytest.mark.parametrize(
    "song, tags, match",
    [
        (SongInfo(title=None), [], "song title"),
        (SongInfo(artist=3), [], "song artist"),
        (SONG, "rock", "one string"),
        (SONG, [None], "NoneType"),
    ],
)
def test_bad_fields_are_rejected(song, tags, match):
    with pytest.raises(ValueError, match=match):
        build_prompt(song, tags)


@pytest.mark.parametrize("max_tokens", [0, 2, 77.0, True, "77"])
def test_bad_budget_is_rejected(max_tokens):
    with pytest.raises(ValueError, match="max_tokens"):
        build_prompt(SONG, TAGS, max_tokens=max_tokens)


def test_synonyms_merge_under_the_canonical_name_with_the_strongest_score():
    scores = {"female": 0.3, "woman": 0.55, "female vocal": 0.2, "rock": 0.4, "no voice": 0.35}
    scores |= {"no vocals": 0.1, "Mellow": 0.2, "Hip-Hop": 0.5}
    assert select_tags(scores, top=10, threshold=0.0) == [
        "female vocals",  # woman's 0.55
        "hip hop",
        "rock",
        "instrumental",  # no voice's 0.35
        "mellow",
    ]


def test_no_synonym_survives_twice_on_the_full_vocabularies():
    tags = select_tags(dict.fromkeys(MTT_LABELS + MSD_LABELS, 0.5), top=1000, threshold=0.0)
    assert len(tags) == len(set(tags))
    for alias, name in _CANONICAL_TAG.items():
        if alias != name:
            assert alias not in tags
    for name in ("female vocals", "male vocals", "vocals", "instrumental", "classical", "beats"):
        assert name in tags
    assert "choir" in tags and "choral" not in tags
    assert "electronic" in tags and "electronica" not in tags and "electro" not in tags
    assert all(tag == tag.lower() for tag in tags)


def test_select_tags_threshold_top_and_order():
    scores = {"guitar": 0.9, "piano": 0.1, "drums": 0.05, "synth": 0.5, "fast": 0.5}
    assert select_tags(scores) == ["guitar", "synth", "fast", "piano"]  # ties keep label order
    assert select_tags(scores, top=2) == ["guitar", "synth"]
    assert select_tags(scores, threshold=0.6) == ["guitar"]
    assert select_tags(scores, top=0) == []
    assert select_tags({}) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(top=-1), "top"),
        (dict(top=2.5), "top"),
        (dict(threshold=float("nan")), "threshold"),
        (dict(threshold="0.1"), "threshold"),
    ],
)
def test_select_tags_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_tags({"rock": 0.5}, **kwargs)


def test_select_tags_rejects_nan_scores():
    with pytest.raises(ValueError, match="'rock'"):
        select_tags({"rock": float("nan")})


@pytest.mark.parametrize(
    "scores, category",
    [
        ({"female vocalists": 0.9, "Hip-Hop": 0.3, "rock": 0.2, "80s": 0.5}, "hip hop"),
        ({"rnb": 0.4, "soul": 0.39}, "r&b"),
        ({"Progressive rock": 0.2, "House": 0.1}, "rock"),
        ({"House": 0.6, "electronic": 0.5}, "dance"),
        ({"classical": 0.7, "piano": 0.9}, "classical"),  # MTT labels count too
        ({"heavy metal": 0.3, "metal": 0.1}, "metal"),
        ({"sad": 0.9, "guitar": 0.8}, ""),
        ({}, ""),
    ],
)
def test_infer_category(scores, category):
    assert infer_category(scores) == category


def test_infer_category_default_and_table():
    assert infer_category({"happy": 1.0}, default="pop") == "pop"
    assert set(_GENRE_CATEGORY.values()) <= set(CATEGORIES)
    assert 18 <= len(CATEGORIES) <= 25 and len(set(CATEGORIES)) == len(CATEGORIES)
    # every genre-like MSD label is known: no silent fall-through for a real genre
    for label in ("rock", "Hip-Hop", "rnb", "House", "electronica", "Progressive rock", "punk"):
        assert infer_category({label: 1.0}) in CATEGORIES


def test_negative_prompt_fights_text():
    for word in ("text", "letters", "typography", "watermark", "logo", "signature", "blurry"):
        assert word in DEFAULT_NEGATIVE_PROMPT


# --- token budget --------------------------------------------------------------------------


def test_without_a_tokenizer_nothing_is_counted_or_cut():
    # no hand-made estimate: a count from the model's own tokenizer, or none
    song = SongInfo(title="x" * 5000, artist="Björk", date="2001", category="pop")
    assert build_prompt(song, TAGS) == build_prompt(song, TAGS, max_tokens=3)
    assert "x" * 5000 in build_prompt(song, TAGS)


def test_fit_text_cuts_at_a_word_break_and_says_what(count):
    short = "cover album of rock song"
    assert fit_text(short, count, CLIP_MAX_TOKENS) == (
        fit_text(short, count, CLIP_MAX_TOKENS).__class__(short, "", count(short), 77)
    )
    long = ", ".join(f"word{i}" for i in range(60))
    fitted = fit_text(long, count, CLIP_MAX_TOKENS)
    assert fitted.was_cut and fitted.tokens == count(fitted.text) <= CLIP_MAX_TOKENS
    assert long.startswith(fitted.text) and long.endswith(fitted.cut)
    assert fitted.text.split(", ")[-1].startswith("word")  # whole words only, no stray comma
    more = fitted.text + ", " + fitted.cut.split(", ")[0]
    assert count(more) > CLIP_MAX_TOKENS  # the longest start that fits
    for bad in (0, 2, True, "77"):
        with pytest.raises(ValueError, match="max_tokens"):
            fit_text(short, count, bad)
    with pytest.raises(ValueError, match="expected text"):
        fit_text(None, count, 77)


def test_budget_fits_with_a_real_tokenizer(count):
    song = SongInfo(
        title="A Very Long Title " * 20, artist="Somebody And The Band", date="1999", category="pop"
    )
    tags = ["female vocals", "synth", "dance", "electronic", "beats", "fast", "loud", "happy"]
    prompt = build_prompt(song, tags, count_tokens=count)
    assert count(prompt) <= CLIP_MAX_TOKENS
    assert prompt.startswith("cover album of pop song, titled A Very Long Title")
    assert "…" in prompt and "by Somebody And The Band" in prompt
    kept = prompt.split("with the following music tags ")[1].split(", ")
    assert 1 <= len(kept) < len(tags) and kept == tags[: len(kept)]


def test_a_ten_thousand_character_title(count):
    title = "Ünïcode title " + "x" * 9986
    assert len(title) == 10_000
    song = SongInfo(title=title, artist="Björk", date="2001", category="electronic")
    prompt = build_prompt(song, TAGS, count_tokens=count)
    assert count(prompt) <= CLIP_MAX_TOKENS
    assert prompt.startswith("cover album of electronic song, titled Ünïcode title x")
    assert "…, by Björk, with the following music tags rock, piano" in prompt


@pytest.mark.parametrize(
    "date, written",
    [
        ("2024-05-01", "2024"),
        ("31 October 1975", "1975"),
        ("2004-01-01T00:00:00", "2004"),
        ("1999", "1999"),
        ("the nineties", "the nineties"),
    ],
)
def test_the_date_is_written_as_its_year(date, written):
    prompt = build_prompt(SongInfo(title="X", date=date, artist="Y", category="rock"), [])
    assert f"released in {written}, by Y" in prompt


def test_drop_order(count):
    tags = ["t1", "t2", "t3", "t4", "t5"]
    song = SongInfo(title="Some Song", artist="Someone", date="31 October 1975", category="rock")

    def at(budget_of: str, **kw):
        return build_prompt(song, tags, count_tokens=count, max_tokens=count(budget_of), **kw)

    full = build_prompt(song, tags)
    assert at(full) == full
    # 1. weakest tags first, down to two
    three = full.replace(", t4, t5", "")
    assert at(three) == three
    two = full.replace(", t3, t4, t5", "")
    assert at(two) == two
    # 2. the date (already cut to its year)
    assert "released in 1975, " in two
    no_date = two.replace(", released in 1975", "")
    assert at(no_date) == no_date
    # 3. a long title, then a long artist, cut to no fewer than 24 characters
    long_song = SongInfo(title="T" * 40, artist="A" * 40, category="rock")
    long_two = build_prompt(long_song, tags[:2])
    cut_title = long_two.replace("T" * 40, "T" * 24 + "…")
    got = build_prompt(long_song, tags, count_tokens=count, max_tokens=count(cut_title))
    assert got == cut_title
    cut_both = cut_title.replace("A" * 40, "A" * 24 + "…")
    got = build_prompt(long_song, tags, count_tokens=count, max_tokens=count(cut_both))
    assert got == cut_both
    # 4. then the last tags; 5. then title, artist, category
    bare = build_prompt(SongInfo(category="rock", artist="Someone"), [])
    assert at(bare) == bare
    no_artist = build_prompt(SongInfo(category="rock"), [])
    assert at(no_artist) == no_artist
    long_category = SongInfo(category="progressive", artist="Someone", title="Some Song")
    nothing = build_prompt(SongInfo(), [])
    got = build_prompt(long_category, tags, count_tokens=count, max_tokens=count(nothing))
    assert got == nothing == "cover album of a song"


def test_a_style_too_long_for_the_budget_is_an_error(count):
    with pytest.raises(ValueError, match="budget of 5"):
        build_prompt(SONG, TAGS, count_tokens=count, max_tokens=5)
