"""Typesetting: lines of text measured with raqm in the fonts that can draw them, wrapped to a
width, stacked by baseline and aligned in a region. Pixels throughout; boxes are ink bounding
boxes (x0, y0, x1, y1)."""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

from PIL import ImageFont

from . import fonts
from .fonts import FontFile

LINE_PITCH = 1.22  # baseline to baseline, in font sizes


@dataclass(frozen=True)
class Placement:
    """Where a block goes: ``region`` in fractions of the safe area (x0, y0, x1, y1), the
    horizontal ``align`` (left | center | right) and vertical ``valign`` (top | middle | bottom)."""

    region: tuple[float, float, float, float]
    align: str
    valign: str


@functools.lru_cache(maxsize=512)
def pil_font(font: FontFile, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(
        str(font.path), size, index=font.index, layout_engine=ImageFont.Layout.RAQM
    )


def is_rtl(text: str) -> bool:
    """The paragraph direction: that of the first strong character (UAX #9, P2-P3)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


@dataclass(frozen=True)
class Line:
    segments: tuple[tuple[str, FontFile], ...]  # visual order
    size: int
    stroke: int
    ink: tuple[int, int, int, int]  # relative to the pen at (0, baseline)
    offsets: tuple[int, ...]  # pen x of each segment


def segments(text: str, face: str) -> tuple[list[tuple[str, FontFile]], str]:
    """Runs of ``text`` with the font each is drawn in, and the characters dropped."""
    whole = fonts.font_for(text, face)
    if whole is not None:
        return [(text, whole)], ""
    runs: list[tuple[str, FontFile]] = []
    dropped = []
    current: FontFile | None = None
    for char in text:
        if not fonts.needs_glyph(char):
            font = current or fonts.face_file(face)  # spaces and marks join the running font
        else:
            font = fonts.font_for_char(char, face)
            if font is None:
                dropped.append(char)
                continue
        if runs and font == runs[-1][1]:
            runs[-1] = (runs[-1][0] + char, font)
        else:
            runs.append((char, font))
        current = font
    return runs, "".join(dict.fromkeys(dropped))


@functools.lru_cache(maxsize=4096)
def measure(text: str, face: str, size: int, stroke: int) -> tuple[Line, str]:
    runs, dropped = segments(text, face)
    if is_rtl(text):
        runs = runs[::-1]  # raqm orders each run; runs themselves go right to left
    x = 0
    x0 = y0 = 10**9
    x1 = y1 = -(10**9)
    offsets = []
    for run, font in runs:
        pil = pil_font(font, size)
        left, top, right, bottom = pil.getbbox(run, anchor="ls", stroke_width=stroke)
        if right > left:
            x0, y0, x1, y1 = min(x0, x + left), min(y0, top), max(x1, x + right), max(y1, bottom)
        offsets.append(x)
        x += round(pil.getlength(run))
    if x1 < x0:  # nothing drawable
        x0 = y0 = x1 = y1 = 0
    return Line(tuple(runs), size, stroke, (x0, y0, x1, y1), tuple(offsets)), dropped


def width_of(text: str, face: str, size: int, stroke: int) -> int:
    ink = measure(text, face, size, stroke)[0].ink
    return ink[2] - ink[0]


def wrap(text: str, face: str, size: int, stroke: int, width: int, max_lines: int):
    """Greedy word wrap to ``width`` pixels; a word wider than a line is broken between
    characters (how CJK wraps anyway). None when it needs more than ``max_lines`` lines."""
    if not text:
        return []
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if width_of(candidate, face, size, stroke) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        if width_of(word, face, size, stroke) <= width:
            line = word
            continue
        for char in word:  # break inside the word
            if line and width_of(line + char, face, size, stroke) > width:
                lines.append(line)
                line = ""
            line += char
        if len(lines) > max_lines:
            return None
    if line:
        lines.append(line)
    return lines if len(lines) <= max_lines else None


def stack(parts, gap: int):
    """Lines of several texts stacked top to bottom, baseline y relative to the first ink top.
    ``parts``: [(lines, size)]; returns [(part index, line, y)] and the total ink height."""
    placed = []
    y = None
    bottom = 0
    for index, (lines, size) in enumerate(parts):
        pitch = round(size * LINE_PITCH)
        for i, line in enumerate(lines):
            if y is None:
                y = -line.ink[1]  # first ink top at 0
            elif i == 0:
                y = bottom + gap - line.ink[1]
            else:
                y += pitch
            placed.append((index, line, y))
            bottom = max(bottom, y + line.ink[3])
    return placed, bottom


def box_union(boxes):
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def place(parts, region, placement: Placement, gap: int, rtl: bool):
    """Position stacked ``parts`` in ``region`` (pixels); None when they do not fit."""
    rx0, ry0, rx1, ry1 = region
    placed, height = stack(parts, gap)
    if height > ry1 - ry0 or not placed:
        return None
    if placement.valign == "top":
        top = ry0
    elif placement.valign == "bottom":
        top = ry1 - height
    else:
        top = ry0 + (ry1 - ry0 - height) // 2
    align = placement.align
    if rtl and align != "center":  # a right-to-left title reads from the other side
        align = "right" if align == "left" else "left"
    out = []
    boxes: dict[int, list] = {}
    for index, line, y in placed:
        ink_w = line.ink[2] - line.ink[0]
        if ink_w > rx1 - rx0:
            return None
        if align == "left":
            x = rx0 - line.ink[0]
        elif align == "right":
            x = rx1 - line.ink[2]
        else:
            x = rx0 + (rx1 - rx0 - ink_w) // 2 - line.ink[0]
        baseline = top + y
        out.append((index, line, x, baseline))
        box = (x + line.ink[0], baseline + line.ink[1], x + line.ink[2], baseline + line.ink[3])
        boxes.setdefault(index, []).append(box)
    return out, {i: box_union(b) for i, b in boxes.items()}
