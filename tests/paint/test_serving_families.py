"""Serving other families and the fast path: ``python -m albumcover cover`` on a tiny SDXL, a
single-file checkpoint and the few-step path (and its fallback when its LoRA is missing); the
app started with ``ALBUMCOVER_FAST=1``, with a LoRA and without one."""

import json

import pytest
from gradio_client import Client
from PIL import Image

from albumcover.cli.main import main
from tests.app_server import AppServer
from tests.single_file import save_single_file
from tests.tiny_models import IMAGE_SIZE, save_tiny_lora, save_tiny_sd, save_tiny_sdxl

SMALL = ["--size", str(IMAGE_SIZE), "--n", "1", "--seed", "5", "--category", "rock"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    sd, sdxl = save_tiny_sd(root / "sd"), save_tiny_sdxl(root / "sdxl")
    return {
        "sd": sd,
        "sdxl": sdxl,
        "sdxl_file": save_single_file(sdxl, root / "files" / "sdxl.safetensors"),
        "lora": save_tiny_lora(sd, root / "lcm"),
    }


def pngs(folder) -> list:
    return sorted(folder.glob("*.png"))


def test_cli_paints_with_sdxl_and_a_single_file(models, clip_path, tmp_path, capsys):
    for name, extra in (("sdxl", []), ("sdxl_file", ["--config", str(models["sdxl"])])):
        out = tmp_path / name
        args = ["cover", str(clip_path), "--model", str(models[name]), *extra, *SMALL]
        assert main([*args, "--steps", "2", "--out", str(out)]) == 0, capsys.readouterr().err
        (png,) = pngs(out)
        assert png.name.endswith("-5.png")
        with Image.open(png) as image:
            assert image.size == (IMAGE_SIZE, IMAGE_SIZE)


def test_cli_fast_path(models, clip_path, tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="albumcover")
    out = tmp_path / "fast"
    args = ["cover", str(clip_path), "--model", str(models["sd"]), *SMALL, "--out", str(out)]
    assert main([*args, "--fast", "--fast-lora", str(models["lora"]), "--steps", "4"]) == 0
    assert len(pngs(out)) == 1
    assert "fast path (4 steps, lcm, LCM)" in caplog.text  # what --verbose shows
    assert "few-step path is off" not in capsys.readouterr().err
    # a missing LoRA: the model's own sampler paints, and the warning says what to set
    missing = str(tmp_path / "no-lora")
    assert main([*args, "--fast-lora", missing, "--out", str(tmp_path / "fallback")]) == 0
    err = capsys.readouterr().err
    assert "warning: The few-step path is off" in err and missing in err
    assert "ALBUMCOVER_FAST=0" in err and "ALBUMCOVER_FAST_LORA" in err and "--no-fast" in err
    assert "25 steps, several times slower" in err
    assert len(pngs(tmp_path / "fallback")) == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--no-fast", "--fast-lora", "x"], "--fast-lora does not apply with --no-fast"),
        (["--no-fast", "--fast-vae", "x"], "--fast-vae does not apply with --no-fast"),
        (["--config", "x"], "--config only applies to a single-file --model"),
    ],
)
def test_cli_bad_family_flags_exit_2(models, clip_path, extra, message, capsys):
    args = ["cover", str(clip_path), "--model", str(models["sd"]), "--prompt-only", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_says_what_it_cut_from_a_long_prompt(models, clip_path, tmp_path, capsys):
    prompt = ", ".join(f"word{i}" for i in range(60))
    args = ["cover", str(clip_path), "--model", str(models["sd"]), *SMALL, "--steps", "1"]
    assert main([*args, "--prompt", prompt, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "--prompt is longer than the model reads (77 tokens); ignored: " in err
    assert "word59" in err


def component_props(client) -> dict:
    """The page's components with an elem_id: elem_id -> their props (value, maximum, ...)."""
    components = client.config["components"]
    return {c["props"]["elem_id"]: c["props"] for c in components if c["props"].get("elem_id")}


def test_the_app_with_the_fast_path(models, tmp_path, clip_path):
    env = dict(
        ALBUMCOVER_MODEL=str(models["sd"]),
        ALBUMCOVER_FAST="1",
        ALBUMCOVER_FAST_LORA=str(models["lora"]),
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
    )
    with AppServer(tmp_path, **env) as server:
        client = Client(server.wait(), verbose=False, download_files=tmp_path / "downloads")
        props = component_props(client)
        assert props["steps"]["value"] == 2  # the CPU's fast path: 2 steps, its UI default
        assert props["width"]["maximum"] == 1024 and props["width"]["value"] == IMAGE_SIZE
        gallery = client.predict("cover album of rock song", num_images=1, api_name="/generate")
        assert len(gallery) == 1
        log = server.log()
        assert "fast path (2 steps, lcm, DDIM trailing)" in log
        assert "The few-step path is off" not in log


def test_the_app_falls_back_when_the_fast_lora_is_missing(models, tmp_path):
    # a local model, no network, the fast path on (the CPU default) and its LoRA on the Hub:
    # Generate still works, with the model's own sampler, and the page says what to set
    env = dict(
        ALBUMCOVER_MODEL=str(models["sd"]),
        ALBUMCOVER_FAST="1",
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
    )
    with AppServer(tmp_path, **env) as server:
        client = Client(server.wait(), verbose=False, download_files=tmp_path / "downloads")
        props = component_props(client)
        assert props["steps"]["value"] == 25  # the model's own sampler
        page = json.dumps(client.config)
        assert "The few-step path is off" in page and "Hyper-SD15-2steps-lora" in page
        assert "ALBUMCOVER_FAST=0" in page and "ALBUMCOVER_FAST_LORA" in page
        gallery = client.predict(
            "cover album of rock song", num_images=1, steps=2, api_name="/generate"
        )
        assert len(gallery) == 1
        assert "WARNING" in server.log() and "The few-step path is off" in server.log()


@pytest.mark.parametrize(
    "setting, value, told",
    [
        (
            "ALBUMCOVER_DTYPE",
            "int8",
            "ALBUMCOVER_DTYPE: unknown dtype 'int8'; one of: auto, float32",
        ),
        ("ALBUMCOVER_ENGINE", "tensorrt", "ALBUMCOVER_ENGINE must be one of auto, torch, openvino"),
    ],
)
def test_the_app_refuses_an_unknown_dtype_or_engine(models, tmp_path, setting, value, told):
    env = {"ALBUMCOVER_MODEL": str(models["sd"]), setting: value}
    with AppServer(tmp_path, **env) as server:
        with pytest.raises(RuntimeError, match="exited"):
            server.wait()
        assert told in server.log()


def test_the_app_paints_through_the_engine_it_is_given(models, tmp_path):
    # the setting read as the dtype is: case and spaces do not matter
    env = dict(
        ALBUMCOVER_MODEL=str(models["sd"]),
        ALBUMCOVER_ENGINE=" OpenVINO ",
        ALBUMCOVER_DTYPE="float32",
        ALBUMCOVER_FAST="0",
        ALBUMCOVER_IMAGE_SIZE=str(IMAGE_SIZE),
    )
    with AppServer(tmp_path, **env) as server:
        client = Client(server.wait(), verbose=False, download_files=tmp_path / "downloads")
        gallery = client.predict(
            "cover album of rock song", num_images=1, steps=2, api_name="/generate"
        )
        assert len(gallery) == 1
        assert "denoiser in openvino" in server.log()
