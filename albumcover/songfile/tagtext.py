"""Cleaning the text a song file's tags carry before it reaches a prompt or a training caption.

Tags are written by decades of taggers with their own ideas of encoding: UTF-8 bytes stored in
an ID3 latin-1 frame read back as ``'BeyoncÃ©'`` (mojibake), undecodable bytes in a Vorbis
comment (mutagen turns them into U+FFFD), NULs, line breaks, and invisible bidirectional
overrides that make text display in another order than it reads. :func:`clean_tag_text`
repairs what can be repaired for certain and drops the rest, always saying what it did.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that reorder how text is displayed (the "Trojan Source" set: embeddings,
# overrides, isolates) and the directional marks; a caption is read in logical order, so they
# carry nothing but the chance to make a title look like another one.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Invisible and meaningless in a tag: byte order marks (left by taggers that write UTF-16 or
# UTF-8 with a BOM) and zero-width spaces. Zero-width (non-)joiners stay: emoji, Indic, Persian.
_INVISIBLE = frozenset("\ufeff\u200b")

# A UTF-8 multi-byte sequence, as bytes: a lead byte and its continuation bytes.
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# The same, for telling text that still looks mis-decoded after repair. No-break space (0xA0)
# is left out of the continuations: "CAFÉ\xa0NOIR" is plain text, not a broken "ɠ".
_MOJIBAKE_SIGN = re.compile(
    rb"[\xc2-\xdf][\x80-\x9f\xa1-\xbf]|[\xe0-\xef][\x80-\x9f\xa1-\xbf]{2}"
    rb"|[\xf0-\xf4][\x80-\x9f\xa1-\xbf]{3}"
)
# Code points a latin-1/cp1252 misreading of plain text decodes into but real tag text hardly
# holds (Latin Extended-B except Romanian ș/ț, IPA, spacing modifiers, C1 controls): a "repair"
# that produces them was a misreading of text that was right all along.
_IMPLAUSIBLE = re.compile("[\u0080-\u009f\u0180-\u0217\u021c-\u02ff\ufffd]")


def _sloppy_cp1252(text: str) -> bytes | None:
    """The bytes ``text`` was decoded from as cp1252, or latin-1 for the five bytes cp1252 leaves
    undefined (decoders map them to C1 controls); None when a character is in neither."""
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ord(ch) > 0xFF:
                return None
            out.append(ord(ch))
    return bytes(out)


def _runs(text: str) -> list[tuple[str, bytes | None]]:
    """``text`` split into maximal runs of characters that have (bytes) or lack (None) a
    cp1252 byte, so mojibake inside a title that also holds e.g. CJK can still be found."""
    runs: list[tuple[str, bytes | None]] = []
    for ch in text:
        data = _sloppy_cp1252(ch)
        if runs and (runs[-1][1] is None) == (data is None):
            prev, prev_data = runs[-1]
            runs[-1] = (prev + ch, None if data is None else prev_data + data)
        else:
            runs.append((ch, data))
    return runs


# Scripts that share words in real text (Japanese mixes kanji and kana).
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "IDEOGRAPHIC": "CJK"}


def _mixes_scripts(text: str) -> bool:
    """Whether a word of ``text`` has letters of two scripts ("PERڠLIVE"): what re-decoding
    plain text that merely looks like mojibake produces ("PERÚ\xa0LIVE"), never a real repair."""
    for word in re.findall(r"\w+", text):
        scripts = {
            _SCRIPT_GROUPS.get(name, name)
            for name in (unicodedata.name(ch, "?").split(" ")[0] for ch in word if ch.isalpha())
        }
        if len(scripts) > 1:
            return True
    return False


def _undo_mojibake(text: str) -> str:
    """``text`` with UTF-8 that was read as cp1252/latin-1 decoded again, where that is certain.

    A run is re-decoded only when all of its bytes form valid UTF-8, at least one multi-byte
    sequence among them, and the result holds nothing a misreading would produce (implausible
    code points, a word of two scripts). Repeated up to three times for text that was
    mis-decoded more than once.
    """
    for _ in range(3):
        fixed = []
        for run, data in _runs(text):
            if data is not None and _UTF8_SEQUENCE.search(data):
                try:
                    decoded = data.decode("utf-8")
                except UnicodeDecodeError:
                    decoded = run
                if not _IMPLAUSIBLE.search(decoded) and not _mixes_scripts(decoded):
                    run = decoded
            fixed.append(run)
        fixed_text = "".join(fixed)
        if fixed_text == text:
            break
        text = fixed_text
    return text


def _looks_mis_decoded(text: str) -> bool:
    """Whether ``text`` still holds a UTF-8 sequence read as cp1252 that decodes to a plausible
    character (so it was not repaired because the rest of its run was not mojibake)."""
    for _, data in _runs(text):
        for match in _MOJIBAKE_SIGN.finditer(data or b""):
            try:
                decoded = match.group().decode("utf-8")
            except UnicodeDecodeError:
                continue
            if not _IMPLAUSIBLE.search(decoded):
                return True
    return False


def clean_tag_text(text: str) -> tuple[str, str]:
    """Clean one tag value for captions and prompts.

    Returns:
        ``(text, note)``: the cleaned text (one line, NFC, whitespace runs as one space) and
        ``""``, or a note that says what was repaired or why the value was dropped (the text is
        then ``""``). Line breaks, tabs, NULs, byte order marks and surrounding blanks are
        cleaned without a note; mojibake, other control characters and bidirectional controls
        are repaired with one. Text holding U+FFFD (bytes that were not valid in their encoding)
        or mojibake that cannot be undone for certain is dropped.
    """
    original = text
    if "\ufffd" in text:
        return "", f"dropped {original!r}: not valid text in its encoding (undecodable bytes)"
    notes = []
    text = "".join(ch for ch in text if ch not in _INVISIBLE and ch != "\x00")
    # Before whitespace is touched: a no-break space may be the second byte of a UTF-8 "à".
    repaired = _undo_mojibake(text)
    if repaired != text:
        notes.append("repaired mis-decoded text (UTF-8 read as latin-1/cp1252)")
        text = repaired
    text = "".join(" " if ch.isspace() else ch for ch in text)
    if any(ch in _BIDI_CONTROLS for ch in text):
        text = "".join(ch for ch in text if ch not in _BIDI_CONTROLS)
        notes.append("removed bidirectional control characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs"))
        notes.append("removed control characters")
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if _looks_mis_decoded(text):
        return "", (
            f"dropped {original!r}: looks mis-decoded (UTF-8 read as latin-1/cp1252) "
            "and cannot be repaired for certain"
        )
    if notes:
        return text, f"{'; '.join(notes)}: {original!r} -> {text!r}"
    return text, ""
