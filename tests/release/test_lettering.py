"""Lettering with the real installed fonts: every layout and script, contrast measured on the
lettered pixels (light, dark, busy, a photograph), the safe area, determinism, bad input."""

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageFont, features

from albumcover.release import fonts
from albumcover.release.contrast import contrast_ratio
from albumcover.release.lettering import LAYOUTS, LetteringError, letter, letter_cover
from albumcover.release.typesetting import LINE_PITCH, pil_font
from tests.covers_art import art, half_busy

SCRIPTS = {
    "latin": "Crème Brûlée Ñandú",
    "cyrillic": "Ночная поездка",
    "greek": "Νυχτερινή διαδρομή",
    "arabic": "ليلة القيادة",
    "hebrew": "שיר של לילה",
    "devanagari": "रात की सवारी",
    "cjk": "夜のドライブ 夜间驾驶",
    "korean": "밤의 드라이브",
    "thai": "ขับรถตอนกลางคืน",
}


def text_mask(result, original=None) -> np.ndarray:
    """Pixels painted exactly in the text colour (glyph interiors) that were not that colour in
    ``original`` already: (H, W) bool."""
    colour = np.array(result.color)
    mask = (np.asarray(result.image) == colour).all(axis=2)
    if original is not None:
        mask &= ~(np.asarray(original.convert("RGB")) == colour).all(axis=2)
    return mask


def measured_contrast(result) -> float:
    """The lowest WCAG ratio between the text colour and the lettered image's pixels around the
    glyphs: inside each ink box (plus a margin), away from the glyphs and their edges."""
    mask = Image.fromarray(text_mask(result).astype(np.uint8) * 255)
    near = np.asarray(mask.filter(ImageFilter.MaxFilter(9))) > 0
    pixels = np.asarray(result.image)
    worst = 21.0
    for x0, y0, x1, y1 in result.boxes.values():
        pad = max(2, result.artist_size // 8)
        box = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
        background = pixels[box][~near[box]]
        assert len(background) > 100
        worst = min(worst, float(contrast_ratio(np.array(result.color)[None], background).min()))
    return worst


def test_raqm_and_fonts_are_installed():
    assert features.check("raqm"), "Pillow's raqm layout (libraqm + libfribidi) is missing"
    for face in fonts.FACES:
        path = fonts.face_file(face).path
        assert path.is_file() and "dejavu" not in str(path).lower(), (face, path)
    assert pil_font(fonts.face_file("sans"), 20).layout_engine == ImageFont.Layout.RAQM


@pytest.mark.parametrize("kind", ["light", "dark", "mid", "busy", "photo"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_contrast_and_safe_area_on_every_layout(kind, layout):
    image = art(kind)
    result = letter_cover(image, "Night Drive", "Ana", layout=layout)
    assert layout in ("auto", result.layout)
    assert measured_contrast(result) >= 4.5, (result.color, result.backing)
    assert result.contrast >= 4.5
    if kind == "busy":
        assert result.backing == "blurred band"  # no colour reads on noise alone
    if kind in ("light", "dark"):
        assert result.backing == "none"
    side = result.image.width
    lo, hi = 0.05 * side, 0.95 * side
    for x0, y0, x1, y1 in result.boxes.values():
        assert lo <= x0 < x1 <= hi and lo <= y0 < y1 <= hi
    ys, xs = np.nonzero(text_mask(result, image))
    assert len(xs) > 200
    assert lo <= xs.min() and xs.max() <= hi and lo <= ys.min() and ys.max() <= hi
    # the title is the prominent one
    assert result.title_size >= 1.5 * result.artist_size
    title, artist = result.boxes["title"], result.boxes["artist"]
    assert title[3] - title[1] > artist[3] - artist[1]


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_is_drawn_without_boxes(script):
    result = letter_cover(art("dark"), SCRIPTS[script], "Ana", layout="top")
    assert result.dropped == ""
    assert text_mask(result)[: result.image.height // 2].sum() > 500
    assert measured_contrast(result) >= 4.5


def test_complex_scripts_are_shaped():
    """Arabic letters join (the shaped word is narrower than its letters set one by one) and
    the Devanagari i-matra is drawn before its consonant."""
    word = "القيادة"
    arabic = pil_font(fonts.font_for(word, "sans"), 100)
    isolated = sum(arabic.getlength(c) for c in word)
    assert arabic.getlength(word) < 0.9 * isolated
    hindi = pil_font(fonts.font_for("कि", "sans"), 100)
    ki = np.asarray(hindi.getmask("कि")).reshape(hindi.getmask("कि").size[::-1])
    ka = np.asarray(hindi.getmask("क")).reshape(hindi.getmask("क").size[::-1])
    assert ki.shape[1] > ka.shape[1]  # the matra adds a stroke on the left (ि before क)


def test_cjk_comes_from_the_cjk_font():
    assert "CJK" in fonts.font_for("夜のドライブ", "serif").path.name


def test_fallback_per_line_and_dropped_characters():
    # Bebas Neue has no Cyrillic: the line falls back to a font that has it, no box
    result = letter_cover(art("dark"), "Ночь", "Ana", font="condensed")
    assert result.dropped == ""
    # no installed font has emoji: dropped and reported, the rest still set
    result = letter_cover(art("dark"), "Night 🎸 Drive", "Ana")
    assert result.dropped == "🎸"
    assert text_mask(result).sum() > 500


def test_mixed_scripts_on_one_line():
    result = letter_cover(art("dark"), "Tokyo 東京 Москва", "Ana", font="condensed")
    assert result.dropped == "" and text_mask(result).sum() > 500


@pytest.mark.parametrize("face", fonts.FONT_NAMES)
def test_each_font(face):
    result = letter_cover(art("light"), "Night Drive", "Ana", font=face)
    assert result.font == ("sans" if face == "auto" else face)
    assert measured_contrast(result) >= 4.5


def test_auto_picks_the_calm_half():
    result = letter_cover(half_busy(), "Night Drive", "Ana")
    assert all(box[1] > 512 for box in result.boxes.values()), result
    assert result.backing == "none"


def test_long_title_wraps_to_three_lines_or_shrinks():
    title = "The Very Long Title Of A Song That Someone Wrote On A Rainy Night In A Small Town " * 2
    result = letter_cover(art("dark"), title[:190], "Ana", layout="top")
    x0, y0, x1, y1 = result.boxes["title"]
    assert y1 - y0 <= 3 * LINE_PITCH * result.title_size
    assert result.title_size < round(0.10 * 1024)  # shrunk from the layout's largest size
    assert x1 <= 0.95 * 1024
    short = letter_cover(art("dark"), "Night", "Ana", layout="top")
    assert short.title_size > result.title_size


def test_one_unbreakable_word_is_broken_not_clipped():
    result = letter_cover(art("dark"), "A" * 150, "", layout="center")
    x0, _, x1, _ = result.boxes["title"]
    assert 0.05 * 1024 <= x0 and x1 <= 0.95 * 1024


def test_same_inputs_same_bytes_and_size_independent_layout():
    a = letter(art("photo"), "Night Drive", "Ana", color="#f0e6d2")
    b = letter(art("photo"), "Night Drive", "Ana", color="#f0e6d2")
    assert a.tobytes() == b.tobytes()
    small = letter_cover(art("photo", 512), "Night Drive", "Ana")
    big = letter_cover(art("photo", 1024), "Night Drive", "Ana")
    assert small.layout == big.layout
    assert abs(big.title_size / small.title_size - 2) < 0.1


def test_empty_text_returns_the_image_unchanged():
    image = art("photo")
    out = letter(image, "", "")
    assert out is not image and out.tobytes() == image.tobytes()
    out = letter(image, "   ", None)
    assert out.tobytes() == image.tobytes()


def test_only_artist_or_only_title():
    assert set(letter_cover(art("dark"), "", "Ana").boxes) == {"artist"}
    assert set(letter_cover(art("dark"), "Night", "", layout="split").boxes) == {"title"}


def test_chosen_colour_gets_a_band_when_it_does_not_read():
    result = letter_cover(art("light"), "Night Drive", "Ana", color="#ffffff")
    assert result.color == (255, 255, 255) and result.backing == "band"
    assert measured_contrast(result) >= 4.5
    outlined = letter_cover(art("busy"), "Night Drive", "Ana", backing="outline")
    assert outlined.backing == "outline" and outlined.contrast >= 4.5


def test_input_modes_are_accepted():
    rgba = art("dark").convert("RGBA")
    assert letter(rgba, "Night", "Ana").mode == "RGB"
    assert letter(art("dark").convert("L"), "Night", "Ana").mode == "RGB"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(title="t" * 10_000), "title is 10,000 characters long; at most 200"),
        (dict(artist="a" * 201), "artist is 201 characters long"),
        (dict(title="bell\x07ring"), "title contains the control character U\\+0007"),
        (dict(artist="nul\x00"), "artist contains the control character U\\+0000"),
        (dict(title=42), "title must be text, got int"),
        (dict(layout="diagonal"), "layout must be one of auto, top, bottom"),
        (dict(font="Comic Sans"), "font must be one of auto, sans"),
        (dict(color="#zzzzzz"), "color must be 'auto', a hex colour"),
        (dict(backing="glow"), "backing must be one of auto, band, outline"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, message):
    args = {"title": "Night", "artist": "Ana", **kwargs}
    with pytest.raises(LetteringError, match=message):
        letter_cover(art("dark", 256), args.pop("title"), args.pop("artist"), **args)


def test_newlines_and_tabs_become_spaces():
    a = letter(art("dark", 256), "Night\nDrive", "Ana\t")
    b = letter(art("dark", 256), "Night Drive", "Ana")
    assert a.tobytes() == b.tobytes()


def test_not_an_image():
    with pytest.raises(LetteringError, match="image must be a PIL image"):
        letter_cover(np.zeros((8, 8, 3)), "Night", "Ana")
