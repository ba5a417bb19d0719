"""Set the title and artist on a cover, the way a designer would: where the art is calm, in a
colour that reads (WCAG contrast >= 4.5:1), inside a 5 % safe area, never clipped.

``letter(image, title, artist)`` returns a new image; :func:`letter_cover` also says what it did
(layout, font, colour, measured contrast, ink boxes, dropped characters). Sizes are relative to
the image, so a 1024-px preview and the 3000-px export look the same. Text is shaped by Pillow's
raqm layout (bidi, Arabic joining, Devanagari conjuncts); a line is drawn in the first font of
:func:`albumcover.release.fonts.chain` that has all its characters, else run by run, and a
character no installed font has is dropped and reported, never drawn as a box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFilter

from . import fonts
from .contrast import (
    MIN_CONTRAST,
    band_alpha,
    candidates,
    contrast_ratio,
    relative_luminance,
    sample,
    texture,
    worst,
)
from .text import MAX_CHARS, LetteringError, clean_text  # noqa: F401 (their home until now)
from .typesetting import (
    Placement,
    box_union,
    is_rtl,
    measure,
    pil_font,
    place,
    segments,
    wrap,
)

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "top", "bottom", "center", "corner", "stacked", "split")
BACKINGS = ("auto", "band", "outline")
MAX_TITLE_LINES = 3
MAX_ARTIST_LINES = 2
CALM_TEXTURE = 0.03  # texture() under which art is calm (flat colour, gradients): not blurred
BUSY_TEXTURE = 0.15  # texture() over which the art behind the text is busy (photographs: <= 0.13)
BLUR_FRACTION = 0.35  # Gaussian radius of the blur under text on busy art, per title size
BUSY_BAND = 0.6  # least band opacity over busy art: what the blur leaves is dimmed too
SAFE_MARGIN = 0.06  # fraction of the side kept clear on each side (distributors ask for 5 %)
SHRINK = 0.92  # font size step while fitting
MIN_TITLE = 0.02  # smallest title size, as a fraction of the side


# layout -> (placements to choose from, largest title size as a fraction of the side,
# artist size relative to the title)
_LAYOUTS: dict[str, tuple[tuple[Placement, ...], float, float]] = {
    "top": ((Placement((0, 0, 1, 0.32), "center", "top"),), 0.10, 0.45),
    "bottom": ((Placement((0, 0.68, 1, 1), "center", "bottom"),), 0.10, 0.45),
    "center": ((Placement((0, 0.2, 1, 0.8), "center", "middle"),), 0.16, 0.4),
    "corner": (
        (
            Placement((0, 0, 0.55, 0.25), "left", "top"),
            Placement((0.45, 0, 1, 0.25), "right", "top"),
            Placement((0, 0.75, 0.55, 1), "left", "bottom"),
            Placement((0.45, 0.75, 1, 1), "right", "bottom"),
        ),
        0.055,
        0.6,
    ),
    "stacked": (
        (
            Placement((0, 0, 1, 0.48), "left", "top"),
            Placement((0, 0.52, 1, 1), "left", "bottom"),
        ),
        0.14,
        0.38,
    ),
    # title at the top, artist at the bottom: two blocks
    "split": (
        (Placement((0, 0, 1, 0.3), "center", "top"),),
        0.10,
        0.45,
    ),
}
_SPLIT_ARTIST = Placement((0, 0.84, 1, 1), "center", "bottom")


@dataclass(frozen=True)
class LetteredCover:
    """What :func:`letter_cover` drew. Boxes are ink bounding boxes in pixels (x0, y0, x1, y1)."""

    image: Image.Image
    layout: str
    font: str
    color: tuple[int, int, int]
    contrast: float  # the lowest WCAG ratio between the text colour and any sampled pixel behind
    backing: str  # none | band | blurred band | outline
    title_size: int = 0  # font sizes in pixels
    artist_size: int = 0
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    dropped: str = ""  # characters no installed font has, left out
    title: str = ""  # the text as drawn: cleaned (albumcover.release.text), dropped ones left out
    artist: str = ""


# --- text checks -------------------------------------------------------------------------------


def parse_color(color) -> tuple[int, int, int] | None:
    """None for "auto", else the (r, g, b) of a #rrggbb / #rgb / CSS colour name."""
    if color is None or (isinstance(color, str) and color.strip().lower() in ("", "auto")):
        return None
    allowed = "color must be 'auto', a hex colour like #f0e6d2 or a CSS colour name"
    if not isinstance(color, str):
        raise LetteringError(f"{allowed}; got {color!r}")
    try:
        rgb = ImageColor.getrgb(color.strip())
    except ValueError as e:
        raise LetteringError(f"{allowed}; got {color!r}") from e
    return tuple(rgb[:3])


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value is None:
        return "auto"
    if not isinstance(value, str) or value not in allowed:
        raise LetteringError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _fit(title, artist, face, stroke, side, region, placement, title_max, ratio):
    """The largest title size (shrinking by :data:`SHRINK`) at which both texts wrap into the
    region; None when even :data:`MIN_TITLE` does not fit."""
    rx0, ry0, rx1, ry1 = region
    width = rx1 - rx0
    size = max(1, round(title_max * side))
    floor = max(6, round(MIN_TITLE * side))
    rtl = is_rtl(title or artist)
    while size >= floor:
        artist_size = max(5, round(size * ratio))
        parts = []
        ok = True
        for text, sz, max_lines in (
            (title, size, MAX_TITLE_LINES),
            (artist, artist_size, MAX_ARTIST_LINES),
        ):
            if not text:
                parts.append(([], sz))
                continue
            lines = wrap(text, face, sz, stroke, width, max_lines)
            if lines is None:
                ok = False
                break
            parts.append(([measure(t, face, sz, stroke)[0] for t in lines], sz))
        if ok:
            placed = place(parts, region, placement, round(size * 0.35), rtl)
            if placed is not None:
                return placed, size, artist_size
        size = int(size * SHRINK)
    return None


# --- the public entry points -------------------------------------------------------------------


def _detail_map(image: Image.Image, side: int = 128) -> np.ndarray:
    """Local detail on a ``side`` x ``side`` grid: gradient magnitude plus luminance spread."""
    gray = np.asarray(image.convert("L").resize((side, side), Image.Resampling.BOX), np.float32)
    gray /= 255.0
    grad = np.zeros_like(gray)
    grad[:, 1:] += np.abs(np.diff(gray, axis=1))
    grad[1:, :] += np.abs(np.diff(gray, axis=0))
    return grad


def _detail(detail: np.ndarray, box, width: int, height: int) -> float:
    n = detail.shape[0]
    x0, y0 = int(box[0] * n / width), int(box[1] * n / height)
    x1, y1 = max(x0 + 1, int(np.ceil(box[2] * n / width))), max(y0 + 1, int(box[3] * n / height))
    patch = detail[y0:y1, x0:x1]
    return float(patch.mean() + patch.std())


def _region(placement: Placement, width: int, height: int) -> tuple[int, int, int, int]:
    mx, my = int(np.ceil(SAFE_MARGIN * width)), int(np.ceil(SAFE_MARGIN * height))
    sw, sh = width - 2 * mx, height - 2 * my
    fx0, fy0, fx1, fy1 = placement.region
    return (mx + round(fx0 * sw), my + round(fy0 * sh), mx + round(fx1 * sw), my + round(fy1 * sh))


def letter(image: Image.Image, title: str, artist: str, **options) -> Image.Image:
    """A new RGB image with ``title`` and ``artist`` set on ``image``; see :func:`letter_cover`."""
    return letter_cover(image, title, artist, **options).image


def letter_cover(
    image: Image.Image,
    title: str,
    artist: str,
    *,
    layout: str = "auto",
    font: str = "auto",
    color: str = "auto",
    backing: str = "auto",
) -> LetteredCover:
    """Set ``title`` (prominent) and ``artist`` on a copy of ``image`` (any size, any mode).

    layout: one of :data:`LAYOUTS`; "auto" tries every placement of every layout and keeps the
        one whose text lands on the least detail (gradient magnitude + spread).
    font: one of :data:`albumcover.release.fonts.FONT_NAMES`; characters it lacks come from
        fallbacks.
    color: "auto" (a tint of the art, or white/black, whichever reads) or a colour.
    backing: "auto" (a translucent band only where no colour reaches 4.5:1), "band", "outline".

    Same inputs give the same pixels. Empty title and artist return an unchanged RGB copy.
    """
    title = clean_text("title", title)
    artist = clean_text("artist", artist)
    layout = _choice("layout", layout, LAYOUTS)
    font = _choice("font", font, fonts.FONT_NAMES)
    backing = _choice("backing", backing, BACKINGS)
    wanted_color = parse_color(color)
    if not isinstance(image, Image.Image):
        raise LetteringError(f"image must be a PIL image, got {type(image).__name__}")
    base = image.convert("RGB") if image.mode != "RGB" else image.copy()
    face = "sans" if font == "auto" else font
    if not title and not artist:
        return LetteredCover(base, layout, face, (0, 0, 0), 21.0, "none")
    width, height = base.size
    side = min(width, height)
    stroke = max(1, round(side * 0.004)) if backing == "outline" else 0

    dropped = "".join(dict.fromkeys(segments(title, face)[1] + segments(artist, face)[1]))
    if dropped:
        log.warning("no installed font has %r: left out of the lettering", dropped)
        title = "".join(c for c in title if c not in dropped).strip()
        artist = "".join(c for c in artist if c not in dropped).strip()
        if not title and not artist:
            raise LetteringError(
                f"no installed font can draw the title or artist (characters {dropped!r})"
            )

    detail = _detail_map(base)
    names = [n for n in _LAYOUTS if layout in ("auto", n)]
    best = None
    for order, name in enumerate(names):
        placements, title_max, ratio = _LAYOUTS[name]
        for placement in placements:
            region = _region(placement, width, height)
            if name == "split":
                fit = _fit_split(title, artist, face, stroke, side, region, title_max, ratio, base)
            else:
                fit = _fit(title, artist, face, stroke, side, region, placement, title_max, ratio)
            if fit is None:
                continue
            (lines, boxes), tsize, asize = fit
            block = box_union(boxes.values())
            score = _detail(detail, block, width, height) + 0.002 * order
            if best is None or score < best[0]:
                best = (score, name, lines, boxes, tsize, asize)
    if best is None:
        raise LetteringError(
            f"the title and artist do not fit layout {layout!r} even at the smallest size; "
            f"shorten them or choose another layout ({', '.join(LAYOUTS)})"
        )
    _, name, lines, boxes, tsize, asize = best
    done = _draw(
        base, name, face, lines, boxes, tsize, asize, wanted_color, backing, stroke, dropped
    )
    return replace(done, title=title, artist=artist)


def _fit_split(title, artist, face, stroke, side, region, title_max, ratio, base):
    """Title at the top, artist at the bottom: each fitted in its own region."""
    width, height = base.size
    lines, boxes = [], {}
    asize = max(5, round(title_max * side * ratio))
    tsize = round(title_max * side)
    if title:
        top = _fit(title, "", face, stroke, side, region, _LAYOUTS["split"][0][0], title_max, 1)
        if top is None:
            return None
        (lines, boxes), tsize, _ = top
        asize = max(5, round(tsize * ratio))
    if artist:
        bottom_region = _region(_SPLIT_ARTIST, width, height)
        bottom = _fit(artist, "", face, stroke, side, bottom_region, _SPLIT_ARTIST, asize / side, 1)
        if bottom is None:
            return None
        (alines, aboxes), asize, _ = bottom
        lines = lines + [(1, *rest) for _, *rest in alines]
        boxes = {**boxes, 1: aboxes[0]}
    return (lines, boxes), tsize, asize


def _pad(box, pad: int, width: int, height: int):
    return (
        max(0, box[0] - pad),
        max(0, box[1] - pad),
        min(width, box[2] + pad),
        min(height, box[3] + pad),
    )


def _draw(base, name, face, lines, boxes, tsize, asize, wanted, backing, stroke, dropped):
    width, height = base.size
    pixels = np.asarray(base)
    pad = max(2, round(tsize * 0.25))
    # the pixels behind the text: each block's ink box with a margin (split: two blocks)
    blocks = [boxes[i] for i in sorted(boxes)]
    if name != "split":
        blocks = [box_union(blocks)]
    areas = [_pad(b, pad, width, height) for b in blocks]
    samples = np.concatenate([sample(pixels, a) for a in areas]).astype(np.float64)
    # Textured art behind the text (noise, foliage, confetti) breaks the letters' shapes
    # whatever the contrast: where it is busy the text is always banded, and wherever a band
    # goes over texture the art under it is blurred first (frosted), so what shows through is
    # calm. Colour, band opacity and contrast are chosen and measured on the backing as drawn.
    grain = max(texture(pixels, a, tsize) for a in areas) if backing != "outline" else 0.0
    busy = grain > BUSY_TEXTURE

    def choose(samples):
        if wanted is not None:
            return wanted
        scored = [(c, worst(c, samples)) for c in candidates(pixels)]
        tinted = [s for s in scored[:2] if s[1] >= MIN_CONTRAST + 0.05]
        return max(tinted or scored, key=lambda s: s[1])[0]

    color = choose(samples)
    contrast = worst(color, samples)
    banded = backing == "band" or (backing == "auto" and (busy or contrast < MIN_CONTRAST + 0.05))
    frosted = banded and grain > CALM_TEXTURE
    if frosted:
        radius = max(2.0, tsize * BLUR_FRACTION)
        base = base.copy()
        for area in areas:
            base.paste(base.crop(area).filter(ImageFilter.GaussianBlur(radius)), area[:2])
        samples = np.concatenate([sample(np.asarray(base), a) for a in areas]).astype(np.float64)
        color = choose(samples)
        contrast = worst(color, samples)
    opposite = (16, 16, 16) if relative_luminance(color) > 0.18 else (255, 255, 255)

    out = base.copy()
    used = "none"
    if banded:
        alpha = band_alpha(color, opposite, samples, least=BUSY_BAND if frosted else 0.3)
        for area in areas:
            crop = out.crop(area)
            solid = Image.new("RGB", crop.size, opposite)
            out.paste(Image.blend(crop, solid, alpha), area[:2])
        drawn = np.asarray(out)
        contrast = worst(color, np.concatenate([sample(drawn, a) for a in areas]))
        used = "blurred band" if frosted else "band"
    elif backing == "outline":
        contrast = float(contrast_ratio(np.asarray(color), np.asarray(opposite)))
        used = "outline"

    draw = ImageDraw.Draw(out)
    for _, line, x, baseline in lines:
        for (run, font_file), offset in zip(line.segments, line.offsets, strict=True):
            draw.text(
                (x + offset, baseline),
                run,
                font=pil_font(font_file, line.size),
                fill=color,
                anchor="ls",
                stroke_width=stroke,
                stroke_fill=opposite if stroke else None,
            )
    named = {}
    if 0 in boxes:
        named["title"] = boxes[0]
    if 1 in boxes:
        named["artist"] = boxes[1]
    log.info("lettered %s/%s in %s, contrast %.2f (%s)", name, face, color, contrast, used)
    return LetteredCover(
        out, name, face, tuple(color), round(contrast, 2), used, tsize, asize, named, dropped
    )
