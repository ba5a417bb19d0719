"""Lettering text, normalised once: what the lettering draws is what the check judges.

:func:`clean_text` is applied to a title or artist before it is lettered, stored in an export
and checked: NFC; tabs, newlines and runs of any Unicode space become one space; invisible
characters are removed (format characters, category Cf: zero-width spaces, word joiners, the
byte-order mark, soft hyphens, bidi embeddings, overrides, isolates and marks, tag characters;
and the blank fillers U+115F, U+1160, U+3164, U+FFA0, U+034F). Only the two join controls stay
(U+200C ZWNJ and U+200D ZWJ: Persian, Indic scripts and emoji sequences are spelled with them).
Right-to-left text needs no control characters: Pillow's raqm layout runs the Unicode bidi
algorithm and shapes Arabic and Hebrew itself; where Pillow has no raqm, right-to-left text is
refused with a message rather than drawn backwards.

:func:`skeleton` is what the check matches its rules against: the cleaned text with the join
controls and variation selectors also removed and compatibility forms folded (NFKC: fullwidth
``ｗｗｗ．`` reads as ``www.``), so no invisible or look-alike character hides a URL from it.
"""

from __future__ import annotations

import functools
import unicodedata

MAX_CHARS = 200  # per field: longer is a paste accident, and cannot be set legibly on a cover

JOIN_CONTROLS = "\u200c\u200d"  # ZWNJ, ZWJ: part of the spelling in several scripts
_BLANK_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u034f")
_VARIATION_SELECTORS = frozenset(
    [chr(c) for c in range(0xFE00, 0xFE10)] + [chr(c) for c in range(0xE0100, 0xE01F0)]
)


class LetteringError(ValueError):
    """Bad lettering input (names the field and what is allowed), or text that cannot fit."""


@functools.cache
def has_raqm() -> bool:
    """Whether Pillow has its raqm layout (bidi and shaping of right-to-left scripts)."""
    from PIL import features

    return bool(features.check("raqm"))


def is_invisible(char: str) -> bool:
    """A character the lettering removes: a format character (Cf) other than the join
    controls, or a blank filler."""
    if char in JOIN_CONTROLS:
        return False
    return unicodedata.category(char) == "Cf" or char in _BLANK_FILLERS


def has_rtl(text: str) -> bool:
    """Whether ``text`` has right-to-left letters (Hebrew, Arabic, Syriac, Thaana, N'Ko...)."""
    return any(unicodedata.bidirectional(c) in ("R", "AL") for c in text)


def clean_text(name: str, text, *, max_chars: int = MAX_CHARS) -> str:
    """``text`` as the lettering draws it (see the module docstring); None is "".

    Raises:
        LetteringError: not text (a list, a number, a dict), a control character other than tab
            and newline, longer than ``max_chars`` once cleaned, or right-to-left text
            without raqm. The message names ``name``.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise LetteringError(f"{name} must be text, got {type(text).__name__}: {text!r:.60}")
    text = unicodedata.normalize("NFC", text)
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in "\t\n\r":
            raise LetteringError(
                f"{name} contains the control character U+{ord(char):04X}; use printable text"
            )
    text = " ".join("".join(c for c in text if not is_invisible(c)).split())
    if len(text) > max_chars:
        raise LetteringError(
            f"{name} is {len(text):,} characters long; at most {max_chars} fit on a cover"
        )
    if has_rtl(text) and not has_raqm():
        raise LetteringError(
            f"{name} has right-to-left text, which needs Pillow built with libraqm to be drawn "
            "in order; install a Pillow wheel (they bundle it) or letter it in another script"
        )
    return text


def skeleton(text: str) -> str:
    """What ``text`` looks like, for matching rules: invisible characters, join controls and
    variation selectors removed, compatibility forms folded (NFKC), spaces collapsed; line
    breaks kept (a stored title and artist are two lines)."""
    lines = []
    for line in unicodedata.normalize("NFKC", text or "").splitlines():
        kept = (
            c
            for c in line
            if not (is_invisible(c) or c in JOIN_CONTROLS or c in _VARIATION_SELECTORS)
            and unicodedata.category(c) not in ("Cc", "Cs")
        )
        lines.append(" ".join("".join(kept).split()))
    return "\n".join(lines)
