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

from albumcover.release.check import check_cover
from albumcover.songfile.tags import read_front_cover
from space.models import load_upscaler
from tests.app_server import AppServer
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

SIZE_RULE = r"size must be a whole number of pixels in \[640, 6000\]"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release_app")
    tiny_sd = save_tiny_sd(tmp / "tiny_sd")
    env = dict(ALBUMCOVER_MODEL=str(tiny_sd), ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE))
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
    with pytest.raises(AppError, match="cover: not a readable image"):
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
