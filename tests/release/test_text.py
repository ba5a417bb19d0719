"""Lettering text normalised once (albumcover.release.text): the check judges what is drawn."""

import io

import numpy as np
import pytest
from PIL import Image

from albumcover.release import text as lettering_text
from albumcover.release.check import check_cover, check_text
from albumcover.release.export import ExportSettings, export_cover
from albumcover.release.lettering import LetteringError, letter_cover
from albumcover.release.text import clean_text, skeleton

ZW = "\u200b"  # zero-width space
HIDERS = [
    "\u200b",  # zero-width space
    "\u2060",  # word joiner
    "\ufeff",  # byte-order mark
    "\u00ad",  # soft hyphen
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\U000e0041",  # tag latin capital A
    "\u3164",  # hangul filler
]


def art(size=512):
    x = np.linspace(0, 255, size)
    image = np.stack([np.outer(x, x) / 255, np.tile(x, (size, 1)), np.full((size, size), 90)], -1)
    return Image.fromarray(image.astype(np.uint8))


@pytest.mark.parametrize("hider", HIDERS)
def test_invisible_characters_are_removed_and_cannot_hide_a_url(hider):
    title = f"visit exa{hider}mple{hider}.com now"
    assert clean_text("title", title) == "visit example.com now"
    assert [f.rule for f in check_text(title)] == ["url"]  # the check alone, uncleaned, too


def test_look_alike_forms_are_judged_as_what_they_look_like():
    assert [f.rule for f in check_text("ｗｗｗ．ｅｘａｍｐｌｅ．ｃｏｍ")] == ["url"]
    assert [f.rule for f in check_text("@\u200dhandle")] == ["handle"]
    assert skeleton("a\u200db\nc\ufe0fd") == "ab\ncd"
    assert not check_text("Night Drive")


def test_join_controls_stay_where_scripts_spell_with_them():
    persian = "می\u200cخواهم"  # ZWNJ keeps the two halves of the word apart
    assert clean_text("title", persian) == persian
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_text("title", family) == family


def test_an_export_whose_title_hides_a_url_fails_its_check():
    done = export_cover(
        art(), f"www{ZW}.night{ZW}drive{ZW}.com", "Ana", settings=ExportSettings(size=640)
    )
    report = check_cover(done.data)
    assert not report.passed and "url" in [f.rule for f in report.findings]
    assert done.lettering.title == "www.nightdrive.com"  # what is drawn, and what is judged


def test_a_bidi_override_does_not_change_the_drawing():
    plain = letter_cover(art(), "Night Drive", "Ana", layout="top")
    tricked = letter_cover(art(), "\u202eNight Drive\u202c", "A\u200bna", layout="top")
    assert tricked.title == "Night Drive" and tricked.artist == "Ana"
    assert plain.image.tobytes() == tricked.image.tobytes()


def test_right_to_left_text_is_shaped_by_raqm():
    assert lettering_text.has_raqm()  # Pillow's wheels bundle libraqm
    done = letter_cover(Image.new("RGB", (512, 512), "white"), "שלום עולם", "سلام", layout="top")
    assert done.title == "שלום עולם" and done.dropped == ""
    # shaped: the Arabic word is drawn joined, narrower than its letters side by side
    font = __import__("albumcover.release.typesetting", fromlist=["pil_font"])
    face = font.pil_font(font.segments("سلام", "sans")[0][0][1], 64)
    joined = face.getlength("سلام")
    apart = sum(face.getlength(c) for c in "سلام")
    assert joined < apart


def test_right_to_left_without_raqm_is_refused_in_words(monkeypatch):
    monkeypatch.setattr(lettering_text, "has_raqm", lambda: False)
    with pytest.raises(LetteringError, match="title has right-to-left text, which needs"):
        clean_text("title", "שלום")
    assert clean_text("title", "Night Drive") == "Night Drive"


@pytest.mark.parametrize("value", [["Night", "Drive"], {"title": "x"}, 42, 4.2, True, b"x"])
def test_values_that_are_not_text_are_refused(value):
    with pytest.raises(LetteringError, match="title must be text, got"):
        letter_cover(art(64), value, "Ana")
    with pytest.raises(LetteringError, match="artist must be text, got"):
        export_cover(art(), "Night", value)


def test_control_characters_are_refused_and_spaces_collapsed():
    with pytest.raises(LetteringError, match="control character U\\+0007"):
        clean_text("artist", "An\x07a")
    assert clean_text("title", " Night\t\u2003Drive\n") == "Night Drive"


def test_what_the_export_stores_is_what_it_drew():
    done = export_cover(art(), "Ni\u200bght", "A\u2066na", settings=ExportSettings(size=640))
    image = Image.open(io.BytesIO(done.data))
    assert image.info["comment"].decode() == "Title: Night\nArtist: Ana"
