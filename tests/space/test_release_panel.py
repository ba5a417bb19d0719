"""The app's release panel over its named API (/letter, /export, /embed) on a real server,
driven by gradio_client: real fonts, real files, the song written with its cover."""

import json
import math
import subprocess

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from albumcover.cli.main import main
from albumcover.images import read_image
from albumcover.release.check import check_cover
from albumcover.songfile.tags import read_front_cover
from space.models import load_upscaler
from tests import hostile_images as hostile
from tests.app_server import AppServer
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

BUDGET_MP = 40  # ALBUMCOVER_MAX_MEGAPIXELS of the server under test
SIZE_RULE = r"size must be a whole number of pixels in \[640, 6000\]"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release_app")
    tiny_sd = save_tiny_sd(tmp / "tiny_sd")
    env = dict(ALBUMCOVER_MODEL=str(tiny_sd), ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE))
    # a budget other than the library's 36-megapixel default: the setting reaches every door
    env.update(ALBUMCOVER_MAX_MEGAPIXELS=str(BUDGET_MP))
    with AppServer(tmp, **env) as server:
        yield Client(server.wait(), verbose=False, download_files=tmp / "downloads")


@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    """A 512-px square 'painting': a smooth gradient with a busy patch."""
    rng = np.random.default_rng(3)
    x = np.linspace(0, 1, 512)
    art = np.stack([np.outer(x, 1 - x) * 4, np.outer(1 - x, x) * 4, np.outer(x, x)], -1) * 255
    art[300:, 300:] = rng.integers(0, 256, (212, 212, 3))
    path = tmp_path_factory.mktemp("art") / "painting.png"
    Image.fromarray(art.clip(0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def song(clip_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("song") / "Night Drive.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-t", "3", "-i", str(clip_path)]
        + ["-metadata", "title=Night Drive", "-metadata", "artist=Ana", str(path)],
        check=True,
    )
    return path


def test_endpoints_and_their_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    letter = [p["parameter_name"] for p in api["/letter"]["parameters"]]
    assert letter == ["cover", "title", "artist", "layout", "font", "color"]
    export = [p["parameter_name"] for p in api["/export"]["parameters"]]
    assert export[-2:] == ["size", "file_format"]
    assert [p["parameter_name"] for p in api["/embed"]["parameters"]] == ["song", "cover_file"]


def test_letter_export_embed(client, painting, song):
    preview, details = client.predict(
        handle_file(painting), "Night Drive", "Ana", "top", "serif", "auto", api_name="/letter"
    )
    with Image.open(preview) as image:
        assert image.size == (1024, 1024)
    assert details["layout"] == "top" and details["font"] == "serif"
    assert details["contrast"] >= 4.5 and details["dropped"] == ""

    exported, report = client.predict(
        handle_file(painting), "Night Drive", "Ana", api_name="/export"
    )
    assert "PASS" in report and "upscaler: lanczos" in report
    with Image.open(exported) as image:
        assert image.size == (3000, 3000) and image.mode == "RGB" and image.format == "JPEG"
    assert check_cover(exported).passed

    tagged = client.predict(handle_file(song), handle_file(exported), api_name="/embed")
    assert tagged.endswith("Night Drive.mp3")
    with open(exported, "rb") as f:
        assert read_front_cover(tagged) == f.read()
    assert read_front_cover(song) is None  # the upload's original is untouched


def test_png_export_and_size(client, painting):
    exported, report = client.predict(
        handle_file(painting), "", "", "auto", "auto", "auto", 1400, "png", api_name="/export"
    )
    with Image.open(exported) as image:
        assert image.size == (1400, 1400) and image.format == "PNG"
    assert "warn: 1400 px is under the recommended 3000 px" in report


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(title="t" * 10_000), "title is 10,000 characters"),
        (dict(title="bell\x07"), "control character U\\+0007"),
        (dict(layout="diagonal"), "layout must be one of auto, top, bottom, center"),
        (dict(font="Comic Sans"), "font must be one of auto, sans, condensed, serif, mono"),
        (dict(color="#zzzzzz"), "color must be 'auto'"),
        (dict(color=7), "color must be 'auto'.*got '7'"),
        (dict(layout=None, font=3), "font must be one of auto, sans"),
    ],
)
def test_letter_rejects_bad_fields(client, painting, args, message):
    call = {**dict(cover=handle_file(painting), title="T", artist="A"), **args}
    with pytest.raises(AppError, match=message):
        client.predict(**call, api_name="/letter")


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(size=100), SIZE_RULE + "; got 100"),
        (dict(size=99_999), SIZE_RULE + "; got 99999"),
        (dict(size=1500.5), SIZE_RULE + "; got 1500.5"),
        (dict(size=None), SIZE_RULE + "; got None"),
        (dict(size="big"), SIZE_RULE + "; got 'big'"),
        (dict(size=True), SIZE_RULE),
        (dict(file_format="tiff"), "format must be one of jpeg, png; got 'tiff'"),
        (dict(layout=[1]), "layout must be one of"),
        (dict(cover=None), "cover: choose a cover first"),
    ],
)
def test_export_rejects_bad_fields(client, painting, args, message):
    call = {**dict(cover=handle_file(painting), title="T", artist="A"), **args}
    with pytest.raises(AppError, match=message):
        client.predict(**call, api_name="/export")


def test_bad_covers_and_songs_then_still_serves(client, painting, tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (800, 400), "navy").save(wide)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (16, 16), "navy").save(tiny)
    with pytest.raises(AppError, match="800x400 pixels; it must be square"):
        client.predict(handle_file(wide), "T", "A", api_name="/export")
    with pytest.raises(AppError, match="16x16 pixels; at least 64"):
        client.predict(handle_file(tiny), "T", "A", api_name="/export")
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    with pytest.raises(AppError, match="cover fake.png: not a readable image"):
        client.predict(handle_file(fake), "T", "A", api_name="/letter")
    words = tmp_path / "notes.mp3"
    words.write_text("not audio\n" * 100)
    with pytest.raises(AppError, match="notes.mp3"):
        client.predict(handle_file(words), handle_file(painting), api_name="/embed")
    with pytest.raises(AppError, match="song: upload the song"):
        client.predict(None, handle_file(painting), api_name="/embed")
    # and the server still letters
    _, details = client.predict(handle_file(painting), "Still", "Here", api_name="/letter")
    assert details["contrast"] >= 4.5


def test_nan_size_is_refused_by_name(client, painting):
    """JSON clients can send NaN (gradio_client cannot): post it raw to the queue API."""
    import httpx

    cover = client.predict(handle_file(painting), "", "", api_name="/letter")[0]
    upload = httpx.post(
        client.src.rstrip("/") + "/gradio_api/upload", files={"files": open(cover, "rb")}
    ).json()[0]
    cover_value = {"path": upload, "meta": {"_type": "gradio.FileData"}}
    body = json.dumps({"data": [cover_value, "T", "A", "auto", "auto", "auto", math.nan, "jpeg"]})
    assert "NaN" in body
    base = client.src.rstrip("/") + "/gradio_api/call/export"
    event = httpx.post(base, content=body, headers={"content-type": "application/json"}).json()
    stream = httpx.get(f"{base}/{event['event_id']}", timeout=120).text
    assert "event: error" in stream and "size must be a whole number" in stream, stream


def test_cmyk_upload_is_exported_as_srgb(client, tmp_path):
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (300, 300), (0, 200, 200, 0)).save(cmyk)
    exported, report = client.predict(handle_file(cmyk), "Print", "Ana", api_name="/export")
    assert "PASS" in report
    with Image.open(exported) as image:
        assert image.mode == "RGB" and image.size == (3000, 3000)


def test_configured_upscaler_without_a_gpu_falls_back_to_lanczos(caplog):
    assert load_upscaler(None, has_gpu=False) is None
    with caplog.at_level("WARNING", logger="albumcover.app"):
        assert load_upscaler("stabilityai/stable-diffusion-x4-upscaler", has_gpu=False) is None
    assert "needs a GPU; none here, exports use Lanczos" in caplog.text


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    return hostile.write_tricky(tmp_path_factory.mktemp("tricky"))


def test_the_app_the_cli_and_the_library_see_the_same_pixels(client, tricky, song, tmp_path):
    """Each file whose pixels depend on the decoder (16-bit, alpha, palette, CMYK, ICC, EXIF),
    exported unlettered at its own size as PNG: the app's upload, the CLI's --image and the
    library's read_image give the same bytes."""
    for name, path in tricky.items():
        exported, report = client.predict(
            handle_file(path), "", "", "auto", "auto", "auto", 640, "png", api_name="/export"
        )
        with Image.open(exported) as image:
            app = image.tobytes()
        out = tmp_path / name.replace(" ", "-")
        argv = ["cover", str(song), "--image", str(path), "--export-size", "640", "--format"]
        assert main([*argv, "png", "--out", str(out)]) == 0
        with Image.open(out / f"{song.stem}.png") as image:
            cli = image.tobytes()
        library = read_image(path).tobytes()
        assert app == cli == library, name
    grey = np.asarray(read_image(tricky["16-bit grey"]))
    assert grey.std() > 40  # a gradient, not the blank square a plain convert makes


def test_a_cover_over_the_budget_is_refused_by_name_and_the_next_served(client, tmp_path):
    bomb = hostile.png_declaring(tmp_path / "bomb.png", 30000, 30000)
    big = hostile.png_declaring(tmp_path / "big.png", 7000, 7000)
    for api in ("/letter", "/export"):
        with pytest.raises(AppError) as refused:
            client.predict(handle_file(bomb), "T", "A", api_name=api)
        said = str(refused.value)
        assert "cover bomb.png declares 900.0 megapixels" in said
        assert f"over the budget of {BUDGET_MP} megapixels" in said and str(tmp_path) not in said
        with pytest.raises(
            AppError, match=rf"cover big.png is 7000 x 7000 .* budget of {BUDGET_MP}"
        ):
            client.predict(handle_file(big), "T", "A", api_name=api)
    with pytest.raises(AppError, match=r"cover cut.png: not a readable image \(the PNG ends"):
        client.predict(
            handle_file(hostile.truncated_png(tmp_path / "cut.png")), "T", "A", api_name="/letter"
        )
    cover_file = hostile.png_declaring(tmp_path / "cover.png", 30000, 30000)
    with pytest.raises(AppError, match="cover cover.png declares 900.0 megapixels, over the bu"):
        client.predict(handle_file(song_for(tmp_path)), handle_file(cover_file), api_name="/embed")
    _, details = client.predict(
        handle_file(tricky_small(tmp_path)), "Still", "Here", api_name="/letter"
    )
    assert details["contrast"] >= 4.5


def song_for(tmp_path):
    path = tmp_path / "song.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d=1", str(path)],
        check=True,
    )
    return path


def tricky_small(tmp_path):
    return hostile.transparent(tmp_path / "ok.png", 256)


@pytest.mark.parametrize(
    "title, drawn",
    [
        ("visit nightdrive\u200b.com", "visit nightdrive.com"),  # zero-width space
        ("www\u2060.nightdrive\u00ad.com", "www.nightdrive.com"),  # word joiner, soft hyphen
        ("\u202ewww.nightdrive.com\u202c", "www.nightdrive.com"),  # a right-to-left override
    ],
)
def test_invisible_characters_neither_reach_the_cover_nor_fool_the_check(
    client, painting, title, drawn
):
    exported, report = client.predict(
        handle_file(painting), title, "Ana", size=640, api_name="/export"
    )
    assert "FAIL" in report and "the lettering contains a URL" in report
    with Image.open(exported) as image:
        assert image.info["comment"].decode() == f"Title: {drawn}\nArtist: Ana"
    _, details = client.predict(handle_file(painting), title, "Ana", api_name="/letter")
    plain = client.predict(handle_file(painting), drawn, "Ana", api_name="/letter")[1]
    assert details == plain  # drawn the same as the visible text


@pytest.mark.parametrize("value", [["Night", "Drive"], {"t": "Night"}, 12, None])
def test_a_title_that_is_not_text_is_refused_at_the_api(client, painting, value):
    for api in ("/letter", "/export"):
        with pytest.raises(AppError, match="title must be text; got"):
            client.predict(handle_file(painting), value, "Ana", api_name=api)


@pytest.mark.parametrize(
    "backing, words",
    [
        ("band", "on a translucent band"),
        ("blurred band", "on a blurred, translucent band"),
        ("outline", "with an outline"),
        ("none", "straight on the picture"),
    ],
)
def test_lettering_details_in_words_name_every_backing(backing, words):
    from space.release_panel import describe_lettering

    details = dict(layout="bottom", font="serif", color="#ffffff", backing=backing, contrast=6.1)
    said = describe_lettering(details)
    assert f"bottom, serif, white (#ffffff) {words}, contrast 6.1:1" in said
