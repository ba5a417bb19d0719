"""The social formats: a 1080 x 1080 post and a 1080 x 1920 story, lettered by the lettering
engine, with an optional date line; sRGB JPEGs written atomically."""

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from albumcover.kit.compose import load_cover
from albumcover.kit.ffmpeg import KitError
from albumcover.kit.social import (
    DATE_STRIP,
    STORY_SAFE,
    render_post,
    render_story,
    save_jpeg,
)
from albumcover.release.lettering import LetteringError
from tests.kit.media import cover_image


def changed(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Rows, columns where the two images differ visibly."""
    return np.abs(np.asarray(a, float) - np.asarray(b, float)).sum(-1) > 30


def test_post_and_story_sizes_and_lettering():
    cover = cover_image()
    post = render_post(cover, "Night Drive", "Ana")
    story = render_story(cover, "Night Drive", "Ana")
    assert post.size == (1080, 1080) and post.mode == "RGB"
    assert story.size == (1080, 1920) and story.mode == "RGB"
    assert changed(post, render_post(cover)).sum() > 2000  # the text is there
    ys, _ = np.nonzero(changed(story, render_story(cover)))
    # the story's text stays out of the apps' controls at the top and bottom
    assert ys.min() >= STORY_SAFE and ys.max() < 1920 - STORY_SAFE


def test_the_date_line_has_its_own_strip():
    cover = cover_image()
    without = render_post(cover, "Night Drive", "Ana")
    with_date = render_post(cover, "Night Drive", "Ana", "Out 1 May 2026")
    date_only = changed(render_post(cover, "", "", "Out 1 May 2026"), render_post(cover))
    rows = np.nonzero(date_only)[0]
    assert rows.min() >= 1080 - DATE_STRIP  # the date line in the bottom strip only
    assert not np.array_equal(np.asarray(without), np.asarray(with_date))
    story_rows = np.nonzero(changed(render_story(cover, "", "", "2026"), render_story(cover)))[0]
    assert story_rows.min() > STORY_SAFE + 20 + 864  # under the cover


def test_jpegs_are_srgb_and_rewritten_only_when_changed(tmp_path):
    path = save_jpeg(render_post(cover_image(), "T", "A"), tmp_path / "post.jpg")
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.size == (1080, 1080)
        profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        assert "srgb" in ImageCms.getProfileDescription(profile).lower()
    first = path.stat().st_mtime_ns
    save_jpeg(render_post(cover_image(), "T", "A"), path)
    assert path.stat().st_mtime_ns == first  # same bytes: untouched
    assert [p.name for p in tmp_path.iterdir()] == ["post.jpg"]


@pytest.mark.parametrize(
    "texts, message",
    [
        (("Night", None, ["2026"]), "date must be text, got list"),
        (("Night\x1b[31m", "A", ""), "title contains the control character U\\+001B"),
        (("N", "A", "x" * 201), "date is 201 characters long"),
        (("N", 3.5, ""), "artist must be text, got float"),
    ],
)
def test_bad_text_is_refused(texts, message):
    for render in (render_post, render_story):
        with pytest.raises(LetteringError, match=message):
            render(cover_image(128), *texts)


def test_empty_text_is_just_the_cover():
    post = render_post(cover_image(), "", "  ", "")
    expected = cover_image().resize((1080, 1080), Image.Resampling.LANCZOS)
    assert np.abs(np.asarray(post, float) - np.asarray(expected, float)).max() <= 1


def test_cover_files_are_checked_before_decoding(tmp_path):
    huge = tmp_path / "huge.png"
    Image.new("L", (9000, 9000)).save(huge, optimize=False)
    with pytest.raises(KitError, match="huge.png is 9000 x 9000 pixels .*over the budget of 36"):
        load_cover(huge)
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)
    with pytest.raises(KitError, match="bomb.png declares 400.0 megapixels, over the budget"):
        load_cover(bomb)
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a picture")
    with pytest.raises(KitError, match="cover fake.jpg: not a readable image"):
        load_cover(fake)
    cmyk = tmp_path / "cmyk.jpg"
    cover_image(200).convert("CMYK").save(cmyk)
    assert load_cover(cmyk).mode == "RGB"
