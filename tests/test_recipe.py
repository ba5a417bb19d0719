"""The caption recipe end to end: the dataset builder writes it, the model folder carries it (as
training leaves it), and the app (``python app.py`` on a tiny SDXL, driven by gradio_client) and
the CLI write prompts exactly that way, refusing settings that contradict it."""

import contextlib
import json
import shutil

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from albumcover.cli.main import main as cli_main
from albumcover.paint.families import load_budget
from albumcover.recipe import (
    DEFAULT_RECIPE,
    RECIPE_FILE,
    CaptionRecipe,
    RecipeError,
    check_served_recipe,
    load_recipe,
    read_recipe,
)
from tests.app_server import AppServer
from tests.music_library import cut_clip, image_bytes, tag_mp3
from tests.tiny_models import IMAGE_SIZE, save_tiny_sdxl
from train.build_dataset import main as build_main
from train.build_dataset import parse_args

SONG = dict(title="Night Drive", artist="Ana", date="2004-05-12")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, clip_path):
    """A dataset built in the ``minimal`` style against a tiny SDXL's tokenizers, and a model
    folder holding its recipe (training copies it there; the tiny SDXL stands in for the
    fine-tune)."""
    root = tmp_path_factory.mktemp("roundtrip")
    track = cut_clip(clip_path, root / "music" / "a.mp3")
    tag_mp3(track, [(3, image_bytes((200, 40, 40)))], genre="Rock", album="A", **SONG)
    base = save_tiny_sdxl(root / "base")
    dataset = root / "dataset"
    args = ["--audio_dir", str(root / "music"), "--output_dir", str(dataset)]
    args += ["--style", "minimal", "--tokenizer", str(base), "--resolution", "64"]
    args += ["--validation_split", "0", "--no_progress"]
    assert build_main(parse_args(args)) == 0
    model = root / "model"
    shutil.copytree(base, model)
    read_recipe(dataset).save(model)
    rows = [json.loads(line) for line in (dataset / "train" / "metadata.jsonl").open()]
    return dataset, model, base, rows


def test_the_builder_writes_the_recipe(trained):
    dataset, model, base, rows = trained
    recipe = read_recipe(dataset)
    assert recipe.style == "minimal" and recipe.base_model == str(base)
    assert (recipe.caption_tagger, recipe.genre_tagger) == ("MTT_musicnn", "MSD_musicnn")
    assert (recipe.top, recipe.threshold, recipe.caption_mode) == (5, 0.1, "prompt")
    assert load_recipe(model) == recipe
    budget = load_budget(base)  # both SDXL tokenizers counted the captions
    assert len(rows) == 1 and rows[0]["text"].startswith("minimalist rock album cover, ")
    assert budget.count(rows[0]["text"]) <= budget.max_tokens == 77


def test_a_rebuild_counts_with_the_recipes_tokenizer(trained, tmp_path):
    dataset = trained[0]
    again = tmp_path / "again"
    shutil.copytree(dataset, again)
    music = trained[1].parent / "music"
    args = ["--audio_dir", str(music), "--output_dir", str(again), "--style", "minimal"]
    assert build_main(parse_args([*args, "--resolution", "64", "--no_progress"])) == 0
    assert read_recipe(again).base_model == str(trained[2])  # no --tokenizer: the recipe's


def test_recipe_rules():
    recipe = CaptionRecipe.for_style("minimal")
    assert check_served_recipe(recipe) == []
    assert check_served_recipe(recipe, caption_tagger="MTT_musicnn", style="minimal") == []
    with pytest.raises(RecipeError, match="caption tagger 'MTT_musicnn'.*'MSD_musicnn'"):
        check_served_recipe(recipe, caption_tagger="MSD_musicnn")
    with pytest.raises(RecipeError, match="prompt style 'minimal'"):
        check_served_recipe(recipe, style="study")
    old = CaptionRecipe(style="study", template="old {title}", tables_version="000000000000")
    warnings = check_served_recipe(old)
    assert len(warnings) == 2 and "old {title}" in warnings[0] and "000000000000" in warnings[1]
    assert CaptionRecipe(caption_mode="category").caption("long prompt", "jazz") == (
        "cover album of jazz song"
    )
    assert CaptionRecipe(caption_mode="category").caption("x", "") == "cover album of a song"
    assert CaptionRecipe(caption_mode="none").caption("long prompt", "jazz") == ""
    assert DEFAULT_RECIPE.caption("p", "jazz") == "p"


def test_a_recipe_beside_a_single_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    CaptionRecipe.for_style("retro").save(tmp_path)
    assert load_recipe(tmp_path / "model.safetensors").style == "retro"
    assert load_recipe(tmp_path / "missing") is None  # a local path without one: defaults
    (tmp_path / RECIPE_FILE).write_text("{not json")
    with pytest.raises(RecipeError, match="not valid JSON"):
        load_recipe(tmp_path)


def test_the_cli_writes_the_models_prompts_and_refuses_others(trained, clip_path, capsys):
    model = str(trained[1])
    song = ["--title", SONG["title"], "--artist", SONG["artist"], "--date", SONG["date"]]
    common = ["cover", str(clip_path), "--model", model, "--prompt-only", *song]
    assert cli_main([*common, "--category", "rock"]) == 0
    out = capsys.readouterr().out
    prompt = out.splitlines()[0].split(": ", 1)[1]  # (a note on what was cut may follow)
    assert prompt == trained[3][0]["text"]  # the training caption
    assert cli_main([*common, "--style", "study"]) == 2
    assert "prompt style 'minimal'" in capsys.readouterr().err
    assert cli_main([*common, "--tagger", "MSD_musicnn"]) == 2
    assert "caption tagger 'MTT_musicnn'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def servers(trained, tmp_path_factory):
    with contextlib.ExitStack() as stack:
        good = stack.enter_context(
            AppServer(
                tmp_path_factory.mktemp("sdxl_app"),
                ALBUMCOVER_MODEL=str(trained[1]),
                ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
            )
        )
        refused = stack.enter_context(
            AppServer(
                tmp_path_factory.mktemp("refused_app"),
                ALBUMCOVER_MODEL=str(trained[1]),
                ALBUMCOVER_TAGGER="MSD_musicnn",
            )
        )
        yield good, refused


def component(client: Client, elem_id: str) -> dict:
    found = [c for c in client.config["components"] if c["props"].get("elem_id") == elem_id]
    assert len(found) == 1, elem_id
    return found[0]["props"]


def test_the_app_on_a_tiny_sdxl_writes_the_recipes_prompts(trained, servers, clip_path):
    server = servers[0]
    client = Client(server.wait(), verbose=False, download_files=server.tmp_dir / "downloads")
    _, prompt, category, _ = client.predict(
        handle_file(clip_path), *SONG.values(), "rock", api_name="/analyze"
    )
    assert prompt == trained[3][0]["text"]  # exactly the training caption of this track
    assert prompt.startswith("minimalist rock album cover, Night Drive, by Ana")
    with pytest.raises(AppError, match=r'style must be one of "minimal"; got "study"'):
        client.predict(handle_file(clip_path), *SONG.values(), "rock", "study", api_name="/analyze")
    # the UI follows the SDXL family: its size limit and step/guidance defaults
    assert component(client, "width")["maximum"] == 1536
    assert component(client, "width")["value"] == IMAGE_SIZE
    assert component(client, "steps")["value"] == 25
    gallery = client.predict(prompt, steps=2, num_images=1, api_name="/generate")
    assert len(gallery) == 1
    from PIL import Image

    with Image.open(gallery[0]["image"]) as image:
        assert image.size == (IMAGE_SIZE, IMAGE_SIZE)
    assert "Stable Diffusion XL" in server.log()


def test_the_app_refuses_a_tagger_that_contradicts_the_recipe(servers):
    with pytest.raises(RuntimeError, match="exited") as failed:
        servers[1].wait()
    assert "caption tagger 'MTT_musicnn'" in str(failed.value)


@pytest.fixture(scope="module")
def unconditional(tmp_path_factory):
    """A model fine-tuned on empty captions: its recipe's caption mode is ``none``."""
    from tests.tiny_models import save_tiny_sd

    model = save_tiny_sd(tmp_path_factory.mktemp("unconditional") / "model")
    CaptionRecipe(caption_mode="none").save(model)
    return model


def test_an_unconditional_model_is_served_an_empty_prompt(unconditional, clip_path, tmp_path):
    with AppServer(
        tmp_path, ALBUMCOVER_MODEL=str(unconditional), ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE)
    ) as server:
        client = Client(server.wait(), verbose=False, download_files=tmp_path / "downloads")
        _, prompt, _, _ = client.predict(
            handle_file(clip_path), *SONG.values(), "rock", api_name="/analyze"
        )
        assert prompt == ""  # what its captions were
        gallery = client.predict("", steps=1, num_images=1, api_name="/generate")
        assert len(gallery) == 1


def test_the_cli_paints_an_unconditional_model(unconditional, clip_path, tmp_path, capsys):
    args = ["cover", str(clip_path), "--model", str(unconditional), "--n", "1", "--seed", "5"]
    args += ["--steps", "1", "--size", str(IMAGE_SIZE), "--out", str(tmp_path), "--device", "cpu"]
    assert cli_main(args) == 0, capsys.readouterr().err
    assert (tmp_path / f"{clip_path.stem}-5.png").is_file()


WRONG_TYPES = [
    ("format", "2", "recipe format must be a whole number, got str '2'"),
    ("format", [2], "recipe format must be a whole number, got list"),
    ("format", True, "recipe format must be a whole number, got bool"),
    ("style", ["study"], "recipe style must be text, got list"),
    ("template", 3, "recipe template must be text, got int"),
    ("caption_tagger", {"n": 1}, "recipe caption_tagger must be text, got dict"),
    ("genre_tagger", None, "recipe genre_tagger must be text, got NoneType"),
    ("base_model", 5, "recipe base_model must be text or null, got int"),
    ("tables_version", 1.5, "recipe tables_version must be text, got float"),
    ("caption_mode", ["prompt"], "recipe caption_mode must be text, got list"),
    ("top", "5", "recipe top must be a whole number >= 1, got '5'"),
    ("threshold", "0.1", "recipe threshold must be a number in [0, 1], got '0.1'"),
    ("genre_patches", "all", "recipe genre_patches must be None or a whole number"),
]


@pytest.mark.parametrize("field, value, message", WRONG_TYPES)
def test_a_recipe_field_of_the_wrong_type_is_refused_in_words(tmp_path, field, value, message):
    data = json.loads(DEFAULT_RECIPE.to_json())
    (tmp_path / RECIPE_FILE).write_text(json.dumps({**data, field: value}))
    with pytest.raises(RecipeError) as refused:
        read_recipe(tmp_path)
    assert str(tmp_path / RECIPE_FILE) in str(refused.value) or field != "format"
    assert message in str(refused.value)


def test_the_cli_and_the_app_refuse_a_recipe_of_the_wrong_type_in_one_line(
    tmp_path, clip_path, capsys
):
    data = json.loads(DEFAULT_RECIPE.to_json())
    model = tmp_path / "model"
    model.mkdir()
    (model / RECIPE_FILE).write_text(json.dumps({**data, "format": "2"}))
    argv = ["cover", str(clip_path), "--model", str(model), "--prompt-only", "--title", "T"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "recipe format must be a whole number, got str '2'" in err and "Traceback" not in err
    (tmp_path / "app").mkdir()
    with AppServer(tmp_path / "app", ALBUMCOVER_MODEL=str(model)) as server:
        with pytest.raises(RuntimeError, match="exited") as failed:
            server.wait()
    said = str(failed.value)
    assert "recipe format must be a whole number, got str '2'" in said
    assert "Traceback" not in said
