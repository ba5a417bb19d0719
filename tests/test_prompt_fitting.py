"""What the token budget cuts is reported: fit_text, removed_parts, SongDescription.cut."""

import pytest

from albumcover.paint.generator import MAX_SEED, variation_seeds
from albumcover.prompts import SongInfo, build_prompt, fit_text, removed_parts


def fit_to_tokens(text, count, max_tokens):
    fitted = fit_text(text, count, max_tokens)
    return fitted.text, fitted.cut


def words(text: str) -> int:
    """A stand-in counter: one token per word, plus start and end."""
    return len(text.split()) + 2


def test_text_that_fits_is_kept_whole():
    assert fit_to_tokens("  a red door  ", words, 5) == ("a red door", "")


def test_the_cut_falls_between_words_and_is_returned():
    kept, cut = fit_to_tokens("one two three four five", words, 5)
    assert (kept, cut) == ("one two three", "four five")


def test_one_long_word_is_cut_between_characters():
    def chars(text):
        return len(text) + 2

    kept, cut = fit_to_tokens("abcdefghij", chars, 6)
    assert (kept, cut) == ("abcd", "efghij")


def test_nothing_fits():
    assert fit_to_tokens("word", lambda text: 99, 5) == ("", "word")


def test_removed_parts_of_a_shortened_prompt():
    song = SongInfo(title="Night Drive", artist="Ana", date="2024", category="jazz")
    tags = ["guitar", "piano", "slow", "strings", "no vocals"]
    full = build_prompt(song, tags, max_tokens=1 << 30)
    short = build_prompt(song, tags, count_tokens=words, max_tokens=words(full) - 3)
    parts = removed_parts(full, short)
    assert parts and all(part not in short for part in parts)
    assert "no vocals" in " ".join(parts)  # the weakest tag goes first


@pytest.mark.parametrize(
    "seed, n, expected",
    [
        (7, 3, [7, 8, 9]),
        (MAX_SEED, 1, [MAX_SEED]),
        (MAX_SEED - 1, 4, [MAX_SEED - 1, MAX_SEED, 0, 1]),
    ],
)
def test_variation_seeds_wrap_inside_the_range(seed, n, expected):
    assert variation_seeds(seed, n) == expected
