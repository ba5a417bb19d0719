"""The app in a real headless Chromium: a song to click at 1280 x 800 and at phone width; upload
a song, Analyze, edit the prompt, Generate; letter, export and download."""

import re
from pathlib import Path

import pytest

from tests.app_server import AppServer
from tests.example_songs import write_example_source
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

# Debian's package (make setup-dev installs it); never `playwright install`
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000  # a busy 2-core VM: tagging a 30 s clip and painting can take a while

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (Debian package `chromium`)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, clip_path):
    """The app on a tiny image model, with a local source of songs to click (the shared clip
    and a synthetic song: tests/example_songs.py)."""
    tmp = tmp_path_factory.mktemp("browser_app")
    tiny_sd = save_tiny_sd(tmp / "tiny_sd")
    env = dict(
        ALBUMCOVER_MODEL=str(tiny_sd),
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
        ALBUMCOVER_EXAMPLES=str(write_example_source(tmp / "songs", clip_path)),
    )
    with AppServer(tmp, **env) as server:
        server.wait()
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # every expect waits as long as a painting may take

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    return page


@pytest.fixture(scope="module")
def page(browser):
    return new_page(browser, 1280, 1400)


def box(page, selector: str) -> dict:
    """The element's box in the viewport (x, y, width, height in CSS pixels)."""
    return page.locator(selector).bounding_box()


def test_a_song_to_click_on_one_screen(browser, server):
    """A visitor at 1280 x 800 clicks the first song to click: it comes back analysed, painted
    and lettered, and the song, the prompt and the covers share the first screen."""
    from playwright.sync_api import expect

    page = new_page(browser, 1280, 800)
    page.goto(server.url)
    expect(page.locator("#example-credits")).to_contain_text("CC0 1.0")  # attribution shown
    page.get_by_text("blues rock: Night Drive").click()
    prompt = page.locator("#prompt").get_by_role("textbox")
    expect(prompt).to_have_value(re.compile("Night Drive, released in 2024, by Ana"))
    expect(page.locator("#tags")).to_contain_text("guitar")
    expect(page.locator("#gallery img")).to_have_count(2)
    expect(page.locator("#gallery")).to_contain_text("seed 7")  # the examples' fixed seed
    expect(page.locator("#letter-title").get_by_role("textbox")).to_have_value("Night Drive")
    expect(page.locator("#lettered img")).to_have_count(1)
    info = page.locator("#letter-info")
    expect(info).to_contain_text(re.compile(r"translucent band|outline|straight on"))
    expect(info).to_contain_text(re.compile(r"contrast \d+\.\d:1"))
    page.evaluate("window.scrollTo(0, 0)")
    song, text, covers = box(page, "#song"), box(page, "#prompt"), box(page, "#gallery")
    first_cover = box(page, "#gallery img >> nth=0")
    for region in (song, text, first_cover):
        assert 0 <= region["y"] and region["y"] + region["height"] <= 800, region
        assert 0 <= region["x"] and region["x"] + region["width"] <= 1280, region
    assert song["x"] + song["width"] <= text["x"]  # song on the left, covers on the right
    assert covers["x"] >= song["x"] + song["width"]
    # outputs look like outputs: no upload prompt on the covers or the downloads
    for output in ("#gallery", "#export-file", "#song-file"):
        expect(page.locator(output)).not_to_contain_text("Upload")
        expect(page.locator(output)).not_to_contain_text("Drop")
    page.close()


def test_phone_width(browser, server):
    """At 390 px the columns stack, nothing is wider than the screen, and a song to click
    still reaches the lettered cover."""
    from playwright.sync_api import expect

    page = new_page(browser, 390, 844)
    page.goto(server.url)
    page.get_by_text("synth: Pad and Kick").click()
    expect(page.locator("#prompt").get_by_role("textbox")).to_have_value(re.compile("Pad and Kick"))
    expect(page.locator("#letter-info")).to_contain_text("contrast")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    song, text = box(page, "#song"), box(page, "#prompt")
    assert song["y"] + song["height"] <= text["y"]  # stacked: the song first
    page.close()


def test_upload_analyze_edit_generate(page, server, clip_path, tmp_path):
    from playwright.sync_api import expect

    page.goto(server.url)
    # Opening the Advanced accordion mounts its controls and then re-applies their stored values
    # once their code has loaded; a value typed in between is overwritten (25 steps painted
    # instead of 3). So open it first and let the upload + analysis round trip pass before typing.
    page.get_by_text("Advanced settings").click()
    steps = page.locator("#steps input[type=number]")
    expect(steps).to_have_value("25")
    page.locator("#song input[type=file]").set_input_files(str(clip_path))
    page.locator("#title").get_by_role("textbox").fill("Night Drive")
    page.locator("#artist").get_by_role("textbox").fill("Ana")
    page.locator("#analyze").click()

    prompt = page.locator("#prompt").get_by_role("textbox")
    expect(prompt).to_have_value(re.compile("Night Drive"), timeout=TIMEOUT_MS)
    expect(page.locator("#tags")).to_contain_text("guitar")
    expect(page.locator("#category").get_by_role("textbox")).not_to_have_value("")
    edited = prompt.input_value() + ", neon city at night"
    prompt.fill(edited)

    steps.fill("3")  # few steps keep the test fast
    steps.press("Enter")
    # the state Generate reads: the slider's own value, which its range input mirrors
    expect(page.locator("#steps input[type=range]")).to_have_value("3")
    expect(steps).to_have_value("3")
    page.locator("#generate").click()
    images = page.locator("#gallery img")
    expect(images).to_have_count(2, timeout=TIMEOUT_MS)  # the default: two variations
    expect(images.first).to_be_visible()
    expect(page.locator("#gallery")).to_contain_text("seed ")
    page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    assert (tmp_path / "app.png").stat().st_size > 10_000
    # what the browser sent is what was painted: the edited prompt, the steps set in Advanced
    assert f"3 steps: {edited!r}" in server.log()


def test_letter_export_and_download(page, server, clip_path, tmp_path):
    """After Generate: the first painting is lettered with the form's title, re-lettered on
    demand, exported (check report shown) and downloaded, then the song with its cover."""
    from PIL import Image
    from playwright.sync_api import expect

    from albumcover.songfile.tags import read_front_cover

    page.goto(server.url)
    page.locator("#song input[type=file]").set_input_files(str(clip_path))
    page.locator("#title").get_by_role("textbox").fill("Night Drive")
    page.locator("#artist").get_by_role("textbox").fill("Ana")
    page.locator("#prompt").get_by_role("textbox").fill("a neon city at night")
    page.locator("#generate").click()

    letter_title = page.locator("#letter-title").get_by_role("textbox")
    expect(letter_title).to_have_value("Night Drive", timeout=TIMEOUT_MS)
    preview = page.locator("#lettered img")
    expect(preview).to_be_visible()
    expect(page.locator("#letter-info")).to_contain_text("contrast")
    first_preview = preview.get_attribute("src")
    letter_title.fill("Nachtfahrt")
    page.locator("#letter").click()
    expect(preview).not_to_have_attribute("src", first_preview)  # re-lettered, not repainted

    page.locator("#export").click()
    report = page.locator("#check-report").get_by_role("textbox")
    expect(report).to_have_value(re.compile(r"PASS[\s\S]*upscaler: lanczos"))
    link = page.locator("#export-file a[download]").first
    expect(link).to_be_visible()
    with page.expect_download() as download:
        link.click()
    cover = tmp_path / "cover.jpg"
    download.value.save_as(cover)
    with Image.open(cover) as image:
        assert image.size == (3000, 3000) and image.format == "JPEG"
        assert b"Title: Nachtfahrt\nArtist: Ana" in image.info["comment"]

    page.locator("#embed").click()
    song_link = page.locator("#song-file a[download]").first
    expect(song_link).to_be_visible()
    with page.expect_download() as download:
        song_link.click()
    song = tmp_path / download.value.suggested_filename
    download.value.save_as(song)
    assert song.suffix == clip_path.suffix
    assert read_front_cover(song) == cover.read_bytes()
