"""The app's release kit over its named API (/kit) on a real server, driven by gradio_client:
real ffmpeg, real fonts; the videos checked with ffprobe, the bad inputs answered in words, and
nothing left on disk outside gradio's swept cache."""

import os

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_server import AppServer
from tests.kit.media import cover_image, probe, stream, write_song
from tests.space.test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

MAX_SONG_SECONDS = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kit_app")
    tiny_sd = save_tiny_sd(tmp / "tiny_sd")
    (tmp / "tmp").mkdir()
    env = dict(
        ALBUMCOVER_MODEL=str(tiny_sd),
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
        ALBUMCOVER_MAX_SONG_SECONDS=str(MAX_SONG_SECONDS),
        TMPDIR=str(tmp / "tmp"),  # the server's own temporary files: checked empty below
    )
    with AppServer(tmp, **env) as server:
        server.wait()
        yield server, tmp
        assert "Traceback" not in server.log(), server.log()  # every refusal said in words


@pytest.fixture(scope="module")
def client(server):
    app, tmp = server
    return Client(app.url, verbose=False, download_files=tmp / "downloads")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    cover = folder / "cover.png"
    cover_image(256).save(cover)
    return dict(
        song=write_song(folder / "Night Drive.wav", 3.5),
        long=write_song(folder / "Long Song.wav", MAX_SONG_SECONDS + 2.5),
        cover=cover,
    )


def video_path(value) -> str:
    """gradio_client gives a Video output as {"video": path, "subtitles": ...}."""
    return value["video"] if isinstance(value, dict) else value


def test_endpoint_and_its_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    names = [p["parameter_name"] for p in api["/kit"]["parameters"]]
    assert names == ["song", "cover", "title", "artist", "date_line", "items", "canvas_seconds"]


def test_the_whole_kit(client, media):
    art, canvas, post, story, files, report = client.predict(
        handle_file(media["song"]),
        handle_file(media["cover"]),
        "Night Drive",
        "Ana",
        "Out 1 May 2026",
        ["video", "canvas", "social"],
        3,
        api_name="/kit",
    )
    info = probe(video_path(art))
    video, audio = stream(info, "video"), stream(info, "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1920, 1080)
    assert (audio["codec_name"], audio["sample_rate"]) == ("aac", "48000")
    assert float(audio["duration"]) == pytest.approx(3.5, abs=0.05)
    loop = probe(video_path(canvas))
    assert stream(loop, "audio") is None
    assert (stream(loop, "video")["width"], stream(loop, "video")["height"]) == (720, 1280)
    assert float(loop["format"]["duration"]) == pytest.approx(3.0, abs=0.05)
    with Image.open(post) as image:
        assert image.size == (1080, 1080)
    with Image.open(story) as image:
        assert image.size == (1080, 1920)
    names = sorted(os.path.basename(f) for f in files)
    assert names == [
        "Night Drive-art-track.mp4",
        "Night Drive-canvas.mp4",
        "Night Drive-post.jpg",
        "Night Drive-story.jpg",
    ]
    assert "Night Drive-canvas.mp4" in report


def test_only_the_social_formats_and_a_song_over_the_cap(client, media):
    art, canvas, post, story, files, report = client.predict(
        handle_file(media["long"]),
        handle_file(media["cover"]),
        "Long",
        "Ana",
        "",
        ["social", "video"],
        3,
        api_name="/kit",
    )
    assert canvas is None and post and story and len(files) == 3
    audio = stream(probe(video_path(art)), "audio")
    assert float(audio["duration"]) == pytest.approx(MAX_SONG_SECONDS, abs=0.05)
    assert f"Long Song.wav is longer than 0:0{MAX_SONG_SECONDS}" in report


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(title=5), "title must be text; got 5"),
        (dict(title="bell\x07"), "title contains the control character U\\+0007"),
        (dict(artist="a" * 300), "The artist is 300 characters long; keep it under 200"),
        (dict(date_line=["2026"]), "date_line must be text"),
        (dict(date_line="\x1b[2J"), "date contains the control character U\\+001B"),
        (dict(items=[]), "items must be a non-empty list of some of video, canvas, social"),
        (dict(items=["gif"]), "items must be a non-empty list"),
        (dict(items="video"), "items must be a non-empty list"),
        (dict(canvas_seconds=9), "canvas_seconds must be a whole number from 3 to 8; got 9"),
        (dict(canvas_seconds=4.5), "canvas_seconds must be a whole number from 3 to 8"),
        (dict(song=None), "song: upload the song first"),
        (dict(cover=None), "cover: choose a cover first"),
    ],
)
def test_bad_fields_are_refused_in_words(client, media, args, message):
    call = dict(
        song=handle_file(media["song"]),
        cover=handle_file(media["cover"]),
        title="T",
        artist="A",
        date_line="",
        items=["social"],
        canvas_seconds=3,
    )
    with pytest.raises(AppError, match=message):
        client.predict(**{**call, **args}, api_name="/kit")


def test_bad_files_then_still_serves_and_keeps_nothing(client, server, media, tmp_path):
    _, tmp = server
    words = tmp_path / "notes.mp3"
    words.write_text("not audio\n" * 100)
    picture = tmp_path / "photo.mp3"
    cover_image(64).save(picture, format="PNG")
    tiny, wide, huge, fake = (tmp_path / n for n in ("tiny.png", "wide.png", "huge.png", "f.png"))
    Image.new("RGB", (16, 16), "navy").save(tiny)
    Image.new("RGB", (800, 400), "navy").save(wide)
    Image.new("L", (7000, 7000)).save(huge)
    fake.write_text("not a picture")
    cases = [
        (words, media["cover"], "notes.mp3: not an audio file: the content is text"),
        (picture, media["cover"], "photo.mp3: not an audio file: the content is a PNG image"),
        (media["song"], tiny, "16x16 pixels; at least 64"),
        (media["song"], wide, "800x400 pixels; it must be square"),
        (media["song"], huge, "7000 x 7000 pixels .*over the budget of 36 megapixels"),
        (media["song"], fake, "cover f.png: not a readable image"),
    ]
    for song, cover, message in cases:
        with pytest.raises(AppError, match=message):
            client.predict(
                handle_file(song), handle_file(cover), "T", "A", "", ["video"], 3, api_name="/kit"
            )
    # the server still makes kits, and neither the failures nor the successes left a file in
    # its temporary folder (the results live in gradio's cache, which it sweeps)
    for _ in range(2):
        client.predict(
            handle_file(media["song"]),
            handle_file(media["cover"]),
            "Again",
            "",
            "",
            ["canvas", "social"],
            3,
            api_name="/kit",
        )
    assert list((tmp / "tmp").iterdir()) == []


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")
def test_the_panel_in_a_browser(page, server, media, tmp_path):
    """Upload, untick the art track, Make the kit: the Canvas plays in a loop, the post and
    story show, and the three files are offered for download."""
    from playwright.sync_api import expect

    app, _ = server
    page.goto(app.url)
    page.get_by_text("Release kit: art-track video").click()  # folded until asked for
    page.locator("#song input[type=file]").set_input_files(str(media["song"]))
    page.locator("#kit-cover input[type=file]").set_input_files(str(media["cover"]))
    page.locator("#kit-items").get_by_label("Art-track video (YouTube)").uncheck()
    page.locator("#kit").click()
    video = page.locator("#kit-canvas video")
    expect(video).to_be_visible(timeout=TIMEOUT_MS)
    assert video.evaluate("v => v.loop") is True
    # it plays: wait until the browser has advanced it (state, not time)
    page.wait_for_function(
        "() => { const v = document.querySelector('#kit-canvas video'); "
        "return v && v.currentTime > 0.2 && !v.paused; }"
    )
    expect(page.locator("#kit-post img")).to_be_visible()
    expect(page.locator("#kit-story img")).to_be_visible()
    links = page.locator("#kit-files a")
    expect(links).to_have_count(3)
    expect(page.locator("#kit-art-track video")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "kit.png"), full_page=True)
