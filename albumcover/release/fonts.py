"""The curated typefaces for lettering, found on disk (no network), and per-character fallback.

Every face comes from a Debian font package listed in ``packages.txt`` (open licences: SIL OFL
for Liberation, Bebas Neue, Courier Prime and Noto; the Bitstream Vera licence for DejaVu). A
face is a list of candidate files, the first that exists wins, so a machine with only
``fonts-dejavu-core`` still letters (in DejaVu).

Coverage (which characters a file can draw) is read from the font's own cmap with fontTools,
once per file, so a character is never drawn as a tofu box: the lettering module asks
:func:`font_for` for the first font in the chain that has every character of a line.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ROOTS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))


@dataclass(frozen=True)
class FontFile:
    """One font on disk: ``path`` and, for a collection (.ttc), the face ``index`` in it."""

    path: Path
    index: int = 0

    @property
    def name(self) -> str:
        return self.path.stem + (f"#{self.index}" if self.index else "")


# face name -> (description, candidate files relative to one of ROOTS); bold weights throughout:
# cover lettering is read at thumbnail size, where regular weights vanish.
FACES: dict[str, tuple[str, tuple[str, ...]]] = {
    "sans": (
        "grotesque sans (Liberation Sans Bold)",
        ("liberation2/LiberationSans-Bold.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    ),
    "condensed": (
        "condensed display caps (Bebas Neue)",
        ("bebas-neue/BebasNeue-Bold.otf", "dejavu/DejaVuSansCondensed-Bold.ttf"),
    ),
    "serif": (
        "serif (Liberation Serif Bold)",
        ("liberation2/LiberationSerif-Bold.ttf", "dejavu/DejaVuSerif-Bold.ttf"),
    ),
    "mono": (
        "typewriter (Courier Prime Bold)",
        ("courier-prime/Courier Prime Bold.otf", "dejavu/DejaVuSansMono-Bold.ttf"),
    ),
    "display": (
        "humanist display sans (Noto Sans Display Bold)",
        ("noto/NotoSansDisplay-Bold.ttf", "dejavu/DejaVuSans-Bold.ttf"),
    ),
}
DEFAULT_FACE = "sans"
FONT_NAMES = ("auto", *FACES)

# Tried in order after the chosen face, for characters it lacks: wide Latin/Greek/Cyrillic
# first, then one face per script, CJK (a 20 MB collection, read only when needed), symbols.
_FALLBACKS: tuple[tuple[str, int], ...] = (
    ("noto/NotoSans-Bold.ttf", 0),
    ("noto/NotoSansArabic-Bold.ttf", 0),
    ("noto/NotoSansHebrew-Bold.ttf", 0),
    ("noto/NotoSansDevanagari-Bold.ttf", 0),
    ("noto/NotoSansBengali-Bold.ttf", 0),
    ("noto/NotoSansTamil-Bold.ttf", 0),
    ("noto/NotoSansTelugu-Bold.ttf", 0),
    ("noto/NotoSansKannada-Bold.ttf", 0),
    ("noto/NotoSansMalayalam-Bold.ttf", 0),
    ("noto/NotoSansGujarati-Bold.ttf", 0),
    ("noto/NotoSansGurmukhi-Bold.ttf", 0),
    ("noto/NotoSansSinhala-Bold.ttf", 0),
    ("noto/NotoSansThai-Bold.ttf", 0),
    ("noto/NotoSansLao-Bold.ttf", 0),
    ("noto/NotoSansKhmer-Bold.ttf", 0),
    ("noto/NotoSansMyanmar-Bold.ttf", 0),
    ("noto/NotoSansArmenian-Bold.ttf", 0),
    ("noto/NotoSansGeorgian-Bold.ttf", 0),
    ("noto/NotoSansEthiopic-Bold.ttf", 0),
    ("noto/NotoSansCJK-Bold.ttc", 0),  # index 0: Noto Sans CJK JP (all of CJK, JP forms)
    ("dejavu/DejaVuSans-Bold.ttf", 0),
    ("noto/NotoSansSymbols-Bold.ttf", 0),
    ("noto/NotoSansSymbols2-Regular.ttf", 0),
)


class FontError(ValueError):
    """An unknown face name, or no font file at all on this machine."""


def _find(relative: str) -> Path | None:
    for root in ROOTS:
        path = root / relative
        if path.is_file():
            return path
    return None


@functools.cache
def face_file(name: str) -> FontFile:
    """The file for face ``name`` (one of :data:`FACES`, or "auto" for the default)."""
    if name == "auto":
        name = DEFAULT_FACE
    if name not in FACES:
        raise FontError(f"font must be one of {', '.join(FONT_NAMES)}; got {name!r}")
    for relative in FACES[name][1]:
        path = _find(relative)
        if path is not None:
            return FontFile(path)
    raise FontError(
        f"no file for font {name!r} on this machine (looked for {', '.join(FACES[name][1])} "
        f"under {', '.join(map(str, ROOTS))}); install the Debian packages in packages.txt"
    )


@functools.cache
def fallback_files() -> tuple[FontFile, ...]:
    """The fallback chain's files present on this machine, in order."""
    found = []
    for relative, index in _FALLBACKS:
        path = _find(relative)
        if path is not None:
            found.append(FontFile(path, index))
    return tuple(found)


@functools.cache
def coverage(font: FontFile) -> frozenset[int]:
    """The code points ``font`` has a glyph for (its best Unicode cmap)."""
    from fontTools.ttLib import TTFont

    with TTFont(font.path, fontNumber=font.index, lazy=True) as tt:
        cmap = tt.getBestCmap() or {}
    return frozenset(cmap)


def needs_glyph(char: str) -> bool:
    """False for what no font must draw: spaces, joiners, bidi marks and other format chars."""
    return not (char.isspace() or unicodedata.category(char) in ("Cf", "Zs", "Zl", "Zp"))


def chain(face: str) -> tuple[FontFile, ...]:
    """The chosen face, then the fallbacks (without repeating it)."""
    first = face_file(face)
    return (first, *(f for f in fallback_files() if f != first))


def font_for(text: str, face: str) -> FontFile | None:
    """The first font of ``chain(face)`` that has every character of ``text``; None if none."""
    wanted = {ord(c) for c in text if needs_glyph(c)}
    for font in chain(face):
        if wanted <= coverage(font):
            return font
    return None


def font_for_char(char: str, face: str) -> FontFile | None:
    """The first font of the chain that has ``char``; None when no installed font has it."""
    for font in chain(face):
        if ord(char) in coverage(font):
            return font
    return None
