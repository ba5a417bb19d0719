"""albumcover.images: the one decoder every image goes through, and its pixel budget."""

import time

import numpy as np
import pytest
from PIL import Image

from albumcover.images import BACKGROUND, MAX_PIXELS, ImageError, read_image, to_srgb
from albumcover.release.check import check_cover
from albumcover.release.export import ExportSettings, export_cover
from tests import hostile_images as hostile

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n"  # PIL would run Ghostscript on it


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = hostile.sixteen_bit_gray(tmp_path / "g16.png", 256)
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # PIL keeps the 16 bits
    got = pixels(read_image(path))[:, :, 0]
    want = hostile.gradient(256) * 255
    assert np.abs(got - want).max() <= 1  # the whole range, each step of it
    assert got.min() == 0 and got.max() >= 254


def test_transparency_is_flattened_onto_white_whatever_the_mode(tmp_path):
    rgba = pixels(read_image(hostile.transparent(tmp_path / "a.png", 64)))
    assert tuple(rgba[10, 5]) == (0, 0, 255) and tuple(rgba[10, 60]) == BACKGROUND
    palette = pixels(read_image(hostile.palette_with_transparency(tmp_path / "p.png", 64)))
    assert tuple(palette[10, 5]) == (0, 200, 0) and tuple(palette[10, 60]) == BACKGROUND
    la = Image.new("LA", (8, 8), (0, 0))  # grey + alpha, fully transparent
    la.save(tmp_path / "la.png")
    assert tuple(pixels(read_image(tmp_path / "la.png"))[0, 0]) == BACKGROUND
    grey_trns = Image.new("L", (8, 8), 7)
    grey_trns.save(tmp_path / "l.png", transparency=7)  # tRNS on a greyscale PNG
    assert tuple(pixels(read_image(tmp_path / "l.png"))[0, 0]) == BACKGROUND


def test_cmyk_icc_and_exif_orientation(tmp_path):
    cmyk = pixels(read_image(hostile.cmyk_jpeg(tmp_path / "c.jpg", 64)))
    assert tuple(cmyk[5, 5]) == pytest.approx((0, 255, 255), abs=3)
    # the profile's red is sRGB's green: converted, not passed through as red
    icc = pixels(read_image(hostile.tagged_with_profile(tmp_path / "i.png", 32)))
    r, g, b = icc[5, 5]
    assert g > 230 and r < 30 and b < 30
    turned = pixels(read_image(hostile.exif_rotated(tmp_path / "e.jpg", 64)))
    assert turned[5, -5, 0] > 200 and turned[5, 5, 0] < 50  # shown top-right, as a viewer shows


def test_the_library_s_export_and_the_decoder_agree(tmp_path):
    """An open PIL image given to export_cover is converted by the same code as a file."""
    for name, path in hostile.write_tricky(tmp_path, 64).items():
        with Image.open(path) as image:
            assert to_srgb(image).tobytes() == read_image(path).tobytes(), name


def test_a_header_over_the_budget_is_refused_before_decoding(tmp_path):
    bomb = hostile.png_declaring(tmp_path / "bomb.png", 30000, 30000)
    assert bomb.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(ImageError) as refused:
        read_image(bomb)
    assert time.perf_counter() - start < 1.0  # a header read, not 2.7 GB of pixels
    message = str(refused.value)
    assert str(bomb) in message and "900.0 megapixels" in message
    assert f"budget of {MAX_PIXELS / 1e6:g} megapixels" in message
    # under PIL's own bomb limit but over the budget: the same words, with the real size
    with pytest.raises(ImageError, match=r"7000 x 7000 pixels .* over the budget of 36 megap"):
        read_image(hostile.png_declaring(tmp_path / "big.png", 7000, 7000))


def test_the_budget_is_a_parameter(tmp_path):
    path = hostile.transparent(tmp_path / "a.png", 100)  # 10 000 pixels
    assert read_image(path, max_pixels=10_000).size == (100, 100)
    with pytest.raises(ImageError, match=r"over the budget of 0.0099 megapixels"):
        read_image(path, max_pixels=9_900, name="art.png")
    with pytest.raises(ValueError, match="max_pixels must be a positive whole number"):
        read_image(path, max_pixels=0)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: hostile.truncated_png(p / "t.png", 64), "not a readable image"),
        (
            lambda p: (p / "w.png").write_text("words") and p / "w.png",
            "not one of the formats taken",
        ),
        (lambda p: p / "missing.png", "no such file"),
        (lambda p: p, "is a folder"),
        (
            lambda p: (
                (p / "x.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 9 9\n")
                and p / "x.eps"
            ),
            "not one of the formats taken",
        ),
    ],
)
def test_broken_and_foreign_files_are_refused_with_their_name(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(ImageError, match=message) as refused:
        read_image(path, name="the cover")
    assert str(refused.value).startswith("the cover")


def test_bytes_go_through_the_same_door(tmp_path):
    path = hostile.sixteen_bit_gray(tmp_path / "g.png", 32)
    assert read_image(path.read_bytes()).tobytes() == read_image(path).tobytes()
    with pytest.raises(ImageError, match="^image: not a readable image"):
        read_image(b"nothing")


def test_the_check_fails_a_bomb_from_its_header_and_never_raises(tmp_path):
    bomb = hostile.png_declaring(tmp_path / "bomb.png", 30000, 30000)
    report = check_cover(bomb)
    assert not report.passed and [f.rule for f in report.findings] == ["too-large"]
    assert "over the budget of 36 megapixels" in report.summary()
    big = check_cover(hostile.png_declaring(tmp_path / "big.png", 7000, 7000))
    assert big.width == 7000 and "too-large" in [f.rule for f in big.findings]
    assert check_cover(bomb, max_pixels=10**9).findings[0].rule == "too-large"  # PIL's limit


def test_export_of_a_sixteen_bit_cover_is_not_blank(tmp_path):
    path = hostile.sixteen_bit_gray(tmp_path / "g.png", 640)
    done = export_cover(read_image(path), settings=ExportSettings(size=640, format="png"))
    exported = Image.open(__import__("io").BytesIO(done.data))
    assert np.asarray(exported).std() > 40  # a gradient, not a white square
