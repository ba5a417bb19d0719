"""Every value the API takes, tried as a hostile client would, against the real app server:
wrong types, null, NaN/Infinity, out of range -> a message naming the field and what it accepts,
no traceback in the server log, and the next request served. All six endpoints (/analyze,
/generate, /letter, /export, /embed, /kit) go through the same checks (space.checks). Also:
every seed shown can be typed back, and cuts (song length, token budget) are told to the user."""

import asyncio
import json
import urllib.request

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from albumcover.paint.generator import MAX_SEED
from albumcover.prompts import DEFAULT_STYLE
from albumcover.release.fonts import FONT_NAMES
from tests.app_server import AppServer
from tests.tiny_models import IMAGE_SIZE, save_tiny_sd

AUTO = "auto (from the audio)"
GOOD = dict(prompt="a cover", steps=1, num_images=1)  # /generate keyword arguments, fast


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tiny_sd = save_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))
    with AppServer(
        tmp_path_factory.mktemp("app"),
        ALBUMCOVER_MODEL=str(tiny_sd),
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
        ALBUMCOVER_MAX_SONG_SECONDS="20",  # the 30 s test clip is then "too long"
    ) as server:
        server.wait()
        yield server
        assert "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False, download_files=server.tmp_dir / "downloads")


def served(client):
    """The request after a refused one is served."""
    gallery = client.predict(**GOOD, api_name="/generate")
    assert len(gallery) == 1


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("prompt", None, "prompt must be text; got null"),
        ("prompt", ["a"], 'prompt must be text; got ["a"] (list)'),
        ("prompt", 5, "prompt must be text; got 5 (int)"),
        ("negative_prompt", None, "negative_prompt must be text; got null"),
        ("negative_prompt", {"a": 1}, "negative_prompt must be text"),
        (
            "negative_prompt",
            "n" * 5000,
            "negative_prompt is 5,000 characters long; keep it under 2000",
        ),
        ("steps", "abc", 'steps must be a whole number from 1 to 100; got "abc" (str)'),
        ("steps", [1], "steps must be a whole number from 1 to 100; got [1] (list)"),
        ("steps", None, "steps must be a whole number from 1 to 100; got null"),
        ("steps", True, "steps must be a whole number from 1 to 100; got true"),
        ("steps", 2.5, "steps must be a whole number from 1 to 100; got 2.5 (not a whole"),
        ("steps", 0, "steps must be a whole number from 1 to 100; got 0"),
        ("steps", 101, "steps must be a whole number from 1 to 100; got 101"),
        ("guidance_scale", "7", 'guidance_scale must be a number from 0 to 20; got "7"'),
        ("guidance_scale", None, "guidance_scale must be a number from 0 to 20; got null"),
        ("guidance_scale", -0.5, "guidance_scale must be a number from 0 to 20; got -0.5"),
        ("guidance_scale", 21, "guidance_scale must be a number from 0 to 20; got 21"),
        ("seed", "x", 'seed must be a whole number from 0 to 4294967295; got "x"'),
        ("seed", -1, "seed must be a whole number from 0 to 4294967295; got -1"),
        ("seed", 2**32, "seed must be a whole number from 0 to 4294967295; got 4294967296"),
        ("seed", 1.5, "seed must be a whole number from 0 to 4294967295; got 1.5"),
        ("randomize_seed", "yes", 'randomize_seed must be true or false; got "yes"'),
        ("randomize_seed", None, "randomize_seed must be true or false; got null"),
        ("randomize_seed", 1, "randomize_seed must be true or false; got 1"),
        ("num_images", 0, "Variations (num_images) must be a whole number from 1 to 4; got 0"),
        ("num_images", 5, "Variations (num_images) must be a whole number from 1 to 4; got 5"),
        ("num_images", "2", "Variations (num_images) must be a whole number from 1 to 4"),
        ("width", 100, "width must be a multiple of 8 from 64 to 1024; got 100"),
        ("width", 2048, "width must be a multiple of 8 from 64 to 1024; got 2048"),
        ("height", [64], "height must be a multiple of 8 from 64 to 1024; got [64]"),
        ("height", None, "height must be a multiple of 8 from 64 to 1024; got null"),
    ],
)
def test_generate_refuses_each_bad_value_by_name(client, field, value, message):
    kwargs = {**GOOD, field: value}
    if field == "seed":
        kwargs["randomize_seed"] = False
    with pytest.raises(AppError) as info:
        client.predict(**kwargs, api_name="/generate")
    assert message in str(info.value)
    served(client)


def test_a_cleared_seed_needs_randomize(client):
    with pytest.raises(AppError, match="Enter a seed, or tick 'Randomize seed'"):
        client.predict(**GOOD, seed=None, randomize_seed=False, api_name="/generate")
    assert client.predict(**GOOD, seed=None, randomize_seed=True, api_name="/generate")


def raw_call(url: str, api: str, body: str) -> str:
    """POST a JSON body as written (NaN and Infinity are legal for Python's json, which the
    server parses with; gradio_client refuses to send them) and return the event stream."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api}", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api}/{event_id}", timeout=300) as r:
        return r.read().decode()


GENERATE_ARGS = ['"a cover"', '""', "1", "7.5", "0", "true", "1", "64", "64"]


@pytest.mark.parametrize(
    "index, literal, message",
    [
        (2, "NaN", "steps must be a whole number from 1 to 100; got nan (not a finite number)"),
        (3, "Infinity", "guidance_scale must be a number from 0 to 20; got inf (not a finite"),
        (3, "NaN", "guidance_scale must be a number from 0 to 20; got nan"),
        (4, "-Infinity", "seed must be a whole number from 0 to 4294967295; got -inf"),
        (7, "1e999", "width must be a multiple of 8 from 64 to 1024; got inf"),
    ],
)
def test_non_finite_numbers_are_refused_by_name(server, client, index, literal, message):
    args = list(GENERATE_ARGS)
    args[index] = literal
    if index == 4:
        args[5] = "false"
    stream = raw_call(server.url, "generate", '{"data": [' + ", ".join(args) + "]}")
    assert "event: error" in stream and message in stream, stream
    served(client)


def test_too_few_values_are_refused_with_the_field_names(server, client):
    stream = raw_call(server.url, "generate", '{"data": ["a cover", "", 1]}')
    assert "/generate takes 9 values (prompt, negative_prompt, steps, " in stream, stream
    assert "got 3" in stream
    served(client)


@pytest.mark.parametrize(
    "position, value, message",
    [
        (0, 5, "Song (audio) must be an uploaded file (in gradio_client: handle_file(path))"),
        (0, [1], "Song (audio) must be an uploaded file"),
        (0, {"path": 3}, 'handle_file(path)); got {"path": 3}'),
        (0, None, "Upload a song first"),
        (1, 5, "title must be text; got 5 (int)"),
        (1, None, "title must be text; got null"),
        (2, ["Ana"], 'artist must be text; got ["Ana"] (list)'),
        (3, 2024, "release_date must be text; got 2024 (int)"),
        (3, "d" * 300, "release_date is 300 characters long; keep it under 200"),
        (4, 3, 'category must be one of "auto (from the audio)", "rock", '),
        (4, None, "category must be one of"),
        (4, "polka from mars", 'category must be one of "auto (from the audio)"'),
        (5, "baroque", 'style must be one of "'),
    ],
)
def test_analyze_refuses_each_bad_value_by_name(client, clip_path, position, value, message):
    args = [handle_file(clip_path), "Night Drive", "Ana", "2024", AUTO, DEFAULT_STYLE]
    args[position] = value
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name="/analyze")
    assert message in str(info.value)
    served(client)


def test_a_server_path_is_not_taken_for_an_upload(server, client):
    # raw, because gradio_client would upload a local file of that name instead
    audio = '{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}'
    body = '{"data": [' + audio + ', "t", "a", "2024", "auto (from the audio)", "study"]}'
    stream = raw_call(server.url, "analyze", body)
    assert "event: error" in stream and "it was not uploaded by a user" in stream, stream
    served(client)


@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    path = tmp_path_factory.mktemp("art") / "painting.png"
    Image.new("RGB", (256, 256), "teal").save(path)
    return path


LETTER = ("cover", "title", "artist", "layout", "font", "color")
COLOR_RULE = "color must be 'auto', a hex colour like #f0e6d2 or a CSS colour name"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cover", 5, "cover must be an uploaded file (in gradio_client: handle_file(path)); got 5"),
        ("cover", ["x.png"], "cover must be an uploaded file (in gradio_client: handle_file(path"),
        ("cover", {"path": 3}, 'handle_file(path)); got {"path": 3}'),
        ("title", None, "title must be text; got null"),
        ("title", ["Night"], 'title must be text; got ["Night"] (list)'),
        ("artist", {"name": "Ana"}, 'artist must be text; got {"name": "Ana"} (dict)'),
        ("artist", 7, "artist must be text; got 7 (int)"),
        ("layout", "diagonal", "layout must be one of auto, top, bottom, center, corner, "),
        ("layout", ["top"], "layout must be one of auto, top,"),
        ("font", True, f"font must be one of {', '.join(FONT_NAMES)}; got True"),
        ("color", ["red"], COLOR_RULE),
        ("color", {"r": 1}, COLOR_RULE),
    ],
)
def test_letter_refuses_each_bad_value_by_name(client, painting, field, value, message):
    kwargs = dict(cover=handle_file(painting), title="Night Drive", artist="Ana")
    with pytest.raises(AppError) as info:
        client.predict(**{**kwargs, field: value}, api_name="/letter")
    assert message in str(info.value)
    _, details = client.predict(**kwargs, api_name="/letter")  # and the next one is served
    assert details["contrast"] >= 4.5


SIZE_RULE = "size must be a whole number of pixels in [640, 6000]"
URL_FILE = (
    '{"path": "https://example.com/c.png", "url": "https://example.com/c.png", '
    '"meta": {"_type": "gradio.FileData"}}'
)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("size", [3000], SIZE_RULE + "; got [3000]"),
        ("size", {"px": 3000}, SIZE_RULE + "; got {'px': 3000}"),
        ("size", 639, SIZE_RULE + "; got 639"),
        ("size", 6001, SIZE_RULE + "; got 6001"),
        ("size", "3000px", SIZE_RULE + "; got '3000px'"),
        ("file_format", "tiff", "file_format must be one of jpeg, png; got 'tiff'"),
        ("file_format", ["png"], "file_format must be one of jpeg, png; got ['png']"),
        ("file_format", 1, "file_format must be one of jpeg, png; got 1"),
        ("title", ["T"], 'title must be text; got ["T"] (list)'),
        ("font", "Comic Sans", "font must be one of auto, sans"),
    ],
)
def test_export_refuses_each_bad_value_by_name(client, painting, field, value, message):
    kwargs = dict(cover=handle_file(painting), title="T", artist="A", size=640)
    with pytest.raises(AppError) as info:
        client.predict(**{**kwargs, field: value}, api_name="/export")
    assert message in str(info.value)


def test_export_takes_a_typed_size_and_null_options(client, painting):
    """The UI sends a size typed into the dropdown as text; null options are the defaults."""
    exported, report = client.predict(
        handle_file(painting), "T", "A", None, None, None, "700", None, api_name="/export"
    )
    assert exported.endswith(".jpg") and "upscaler: lanczos" in report
    with Image.open(exported) as image:
        assert image.size == (700, 700) and image.format == "JPEG"


@pytest.mark.parametrize(
    "position, value, message",
    [
        (0, 5, "song must be an uploaded file (in gradio_client: handle_file(path)); got 5"),
        (
            0,
            "song.mp3",
            'song must be an uploaded file (in gradio_client: handle_file(path)); got "',
        ),
        (1, [1, 2], "Export (cover_file) must be an uploaded file"),
        (1, {"path": None}, "Export (cover_file) must be an uploaded file"),
        (1, None, "cover_file: press Export first"),
    ],
)
def test_embed_refuses_each_bad_value_by_name(
    client, clip_path, painting, position, value, message
):
    args = [handle_file(clip_path), handle_file(painting)]
    args[position] = value
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name="/embed")
    assert message in str(info.value)


@pytest.mark.parametrize(
    "api, body, message",
    [
        ("letter", '{"data": [null]}', "/letter takes 6 values (" + ", ".join(LETTER) + "); got 1"),
        ("export", '{"data": []}', "/export takes 8 values ("),
        ("embed", '{"data": [null]}', "/embed takes 2 values (song, cover_file); got 1"),
        (
            "embed",
            '{"data": [null, {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]}',
            "it was not uploaded by a user",
        ),
        (
            "export",
            '{"data": [null, "T", "A", "auto", "auto", "auto", Infinity, "jpeg"]}',
            SIZE_RULE + "; got inf",
        ),
        (
            "letter",
            '{"data": ["cover.png", "T", "A", "auto", "auto", "auto"]}',
            r"cover must be an uploaded file (in gradio_client: handle_file(path)); got \"cover",
        ),
        (
            "export",
            '{"data": [' + URL_FILE + ', "T", "A", "auto", "auto", "auto", 640, "png"]}',
            r"cover: a URL is not taken, only an uploaded file (in gradio_client: "
            r"handle_file(path) of a local file); got \"https://example.com/c.png\"",
        ),
        (
            "letter",
            '{"data": [' + URL_FILE.replace("example.com", "127.0.0.1:9") + ', "T", "A", '
            '"auto", "auto", "auto"]}',
            "cover: a URL is not taken",
        ),
        ("embed", '{"data": [null, ' + URL_FILE + "]}", "Export (cover_file): a URL is not"),
        (
            "embed",
            '{"data": [' + URL_FILE.replace("https://example.com", "data:,") + ", null]}",
            "song: a URL is not taken",
        ),
    ],
)
def test_malformed_release_requests_are_refused(server, client, api, body, message):
    stream = raw_call(server.url, api, body)
    assert "event: error" in stream and message in stream, stream
    served(client)


def pixels(item) -> np.ndarray:
    return np.asarray(Image.open(item["image"]), dtype=np.int16)


def test_seeds_at_the_top_of_the_range_wrap_and_each_repaints_alone(client):
    prompt = "a lighthouse in a storm"
    gallery = client.predict(
        prompt, steps=2, num_images=3, seed=MAX_SEED - 1, randomize_seed=False, api_name="/generate"
    )
    seeds = [int(item["caption"].removeprefix("seed ")) for item in gallery]
    assert seeds == [MAX_SEED - 1, MAX_SEED, 0]  # each a seed the Seed field takes
    for seed, item in zip(seeds, gallery, strict=True):
        alone = client.predict(
            prompt, steps=2, num_images=1, seed=seed, randomize_seed=False, api_name="/generate"
        )
        assert alone[0]["caption"] == f"seed {seed}"
        # (equal up to float rounding: a batch of three and a batch of one sum differently)
        assert np.abs(pixels(alone[0]) - pixels(item)).max() <= 2


def test_random_seeds_shown_are_in_the_range_typed_back(client):
    gallery = client.predict("a cover", steps=1, num_images=4, api_name="/generate")
    seeds = [int(item["caption"].removeprefix("seed ")) for item in gallery]
    assert all(0 <= s <= MAX_SEED for s in seeds)
    assert seeds == [(seeds[0] + k) % (MAX_SEED + 1) for k in range(4)]


def warnings_of(client, *args, api_name):
    """Run a call; return its result and the gr.Warning texts the app sent with it."""
    job = client.submit(*args, api_name=api_name)
    result = job.result(timeout=300)
    warnings = []
    updates = job.communicator.updates
    while True:  # every update is queued before the result is, so draining sees them all
        try:
            update = updates.get_nowait()
        except asyncio.QueueEmpty:
            break
        log = getattr(update, "log", None)
        if log and log[1] == "warning":
            warnings.append(log[0])
    return result, warnings


def test_a_song_longer_than_the_cap_says_so(client, clip_path):
    _, warnings = warnings_of(
        client, handle_file(clip_path), "Night Drive", "Ana", "2024", AUTO, api_name="/analyze"
    )
    assert any(
        "TRWJAZW128F42760DD_test.mp3 is longer than 0:20: only its first 0:20 of 0:30 were heard"
        in w
        for w in warnings
    ), warnings


def test_a_shortened_prompt_shows_what_was_cut(client, clip_path):
    title = "The Longest Night Drive " + " ".join(f"Verse{i}" for i in range(20))
    (_, prompt, _, _), warnings = warnings_of(
        client, handle_file(clip_path), title, "Ana", "2024", AUTO, api_name="/analyze"
    )
    cut = [w for w in warnings if w.startswith("The prompt was shortened")]
    assert len(cut) == 1, warnings
    assert "Verse19" in cut[0] and "Verse19" not in prompt  # the title's tail was cut and told


def test_an_edited_prompt_over_the_budget_shows_the_ignored_words(client):
    words = " ".join(f"word{i}" for i in range(80))
    negative = "blurry " + " ".join(f"ugly{i}" for i in range(80))
    gallery, warnings = warnings_of(
        client, words, negative, 1, 7.5, 0, True, 1, 64, 64, api_name="/generate"
    )
    assert len(gallery) == 1
    prompt_cut = [w for w in warnings if w.startswith("The prompt is longer")]
    negative_cut = [w for w in warnings if w.startswith("The negative prompt is longer")]
    assert len(prompt_cut) == 1 and len(negative_cut) == 1, warnings
    ignored = prompt_cut[0].split("ignores: “", 1)[1].rstrip("”")
    assert ignored.endswith("word79") and words.endswith(ignored)
    assert "ugly79" in negative_cut[0] and "blurry" not in negative_cut[0]


def test_a_prompt_that_fits_warns_nothing(client):
    gallery, warnings = warnings_of(
        client, "a red door", "blurry", 1, 7.5, 0, True, 1, 64, 64, api_name="/generate"
    )
    assert len(gallery) == 1 and warnings == []


CHATTER = (
    "torchvision",  # transformers' fallback notice, once per image processor, on every start
    "Loading pipeline components",  # diffusers' progress bar
    "Loading weights",  # transformers' progress bar
    "HTTP Request:",  # httpx INFO lines for gradio's own start-up checks
    "Token indices sequence length",  # tokenizer warnings for prompts the app already fitted
    "truncated because CLIP",
    "Traceback",
)


def test_the_server_log_is_quiet(server, client):
    served(client)  # a cover painted, so any per-request chatter is in the log too
    log = server.log_path.read_text(errors="replace")  # all of it, from the start
    assert "Running on local URL" in log
    noisy = [line for line in log.splitlines() if any(c in line for c in CHATTER)]
    assert noisy == [], "\n".join(noisy)
