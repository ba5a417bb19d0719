"""train.evaluate: every model scored on the held-out split, end to end on tiny real models."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.synthetic_covers import write_cover_dataset
from tests.tiny_clip import save_tiny_clip
from tests.tiny_models import save_tiny_lora, save_tiny_sd
from train import evaluate
from train.gan import train as gan_train
from train.gan.checkpoint import CheckpointError
from train.gan.data import DatasetError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = write_cover_dataset(root / "covers", n_train=8, n_validation=4, size=32)
    # two held-out rows share a prompt (3 distinct prompts), one has no category (-> <unk>)
    metadata = data / "validation" / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    rows[1]["text"] = rows[0]["text"]
    rows[3]["category"] = ""
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gans = {}
    for condition in ("prompt", "category"):
        flags = [
            "--condition", condition, "--train_data_dir", str(data),
            "--output_dir", str(root / f"gan-{condition}"), "--train_batch_size", "4",
            "--max_train_steps", "1", "--g_features", "8", "--d_features", "8",
            "--latent_dim", "8", "--embed_dim", "8", "--seed", "0",
        ]  # fmt: skip
        if condition == "prompt":
            flags += ["--vocab_min_count", "1"]
        gans[condition] = gan_train.main(gan_train.parse_args(flags))
    sd = save_tiny_sd(root / "sd")
    return {
        "root": root,
        "data": data,
        "clip": save_tiny_clip(root / "clip"),
        "sd": sd,
        "lora": save_tiny_lora(sd, root / "lora"),
        "gans": gans,
    }


def _args(setup, *extra, out="results.md"):
    return [
        "--data_dir", str(setup["data"]), "--clip_model", str(setup["clip"]),
        "--out", str(setup["root"] / out), "--steps", "1", "--resolution", "64",
        "--kid_subsets", "5", "--device", "cpu", *extra,
    ]  # fmt: skip


def _saved_images(images_dir, row) -> list:
    spec = evaluate.ModelSpec(row["kind"], row["path"], row["lora"])
    return sorted((images_dir / spec.slug).glob("*.png"))


def test_scores_gans_and_diffusion_models_end_to_end(setup):
    gans, sd = setup["gans"], setup["sd"]
    images_dir = setup["root"] / "images"
    args = evaluate.parse_args(
        _args(
            setup,
            "--gan", str(gans["prompt"]), "--gan", str(gans["category"]),
            "--diffusers", str(sd), "--diffusers", f"{sd}::{setup['lora']}",
            "--images_dir", str(images_dir),
        )
    )  # fmt: skip
    result = evaluate.main(args)

    table = (setup["root"] / "results.md").read_text()
    assert "CLIP-FID" in table and "not on InceptionV3" in table
    body = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(body) == 1 + 5  # header + real covers + 4 models
    assert body[1].startswith("| real covers (reference) | — | 4 |")
    assert "+ LoRA" in body[5]

    saved = json.loads((setup["root"] / "results.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert (saved["covers"], saved["prompts"], saved["num_images_per_prompt"]) == (4, 3, 1)
    real, *models = saved["rows"]
    assert real["score"]["images"] == 4 and "fid" in real["score"]  # train covers as reference
    assert [r["kind"] for r in models] == ["gan", "gan", "diffusers", "diffusers"]
    for row in models:
        score = row["score"]
        assert score["images"] == 4
        for key in ("fid", "kid", "kid_std", "clip_score", "r1", "r5", "mean_rank"):
            assert math.isfinite(score[key]), (row["label"], key)
        assert 0 <= score["clip_score"] <= 100 and 1 <= score["mean_rank"] <= 3
        assert score["chance_r1"] == pytest.approx(1 / 3)
        assert len(_saved_images(images_dir, row)) == 4
    # the LoRA changes the pipeline's images, so its scores differ from the base model's
    assert models[2]["score"]["fid"] != models[3]["score"]["fid"]
    assert Image.open(_saved_images(images_dir, models[2])[0]).size == (64, 64)
    assert Image.open(_saved_images(images_dir, models[0])[0]).size == (64, 64)  # GAN's own


def test_several_images_per_prompt_and_reproducible(setup):
    gan = str(setup["gans"]["prompt"])
    flags = ["--gan", gan, "--num_images_per_prompt", "2", "--max_prompts", "3"]
    images_dir = setup["root"] / "images-2"
    first = evaluate.main(
        evaluate.parse_args(_args(setup, *flags, "--images_dir", str(images_dir)))
    )
    again = evaluate.main(evaluate.parse_args(_args(setup, *flags, out="again.md")))
    assert first["rows"] == again["rows"]
    assert (first["covers"], first["prompts"]) == (3, 2)
    assert first["rows"][1]["score"]["images"] == 6
    assert len(_saved_images(images_dir, first["rows"][1])) == 6


def test_fine_tunes_are_prompted_in_their_caption_mode(setup):
    """The study's ablation: a model whose recipe says ``category`` is drawn from
    ``cover album of {category} song``, one that says ``none`` from an empty prompt without
    guidance; the table names each model's condition next to the GANs'."""
    import shutil

    from albumcover.paint.generator import CoverGenerator, GenerationSettings
    from albumcover.recipe import CaptionRecipe

    models = {}
    for mode in ("category", "none"):
        models[mode] = setup["root"] / f"sd-{mode}"
        if not models[mode].exists():
            shutil.copytree(setup["sd"], models[mode])
            CaptionRecipe(caption_mode=mode).save(models[mode])
    images_dir = setup["root"] / "images-modes"
    flags = ["--gan", str(setup["gans"]["category"]), "--diffusers", str(models["category"]),
             "--diffusers", str(models["none"]), "--images_dir", str(images_dir)]  # fmt: skip
    result = evaluate.main(evaluate.parse_args(_args(setup, *flags, out="modes.md")))
    assert [r["condition"] for r in result["rows"]] == ["—", "category", "category", "none"]
    table = (setup["root"] / "modes.md").read_text()
    assert "| condition |" in table and f"| SD {models['none']} | none | 4 |" in table

    rows = [json.loads(line) for line in (setup["data"] / "validation" / "metadata.jsonl").open()]
    plain = CoverGenerator.from_pretrained(setup["sd"], device="cpu", safety_checker=False)
    for mode, row in (("category", result["rows"][2]), ("none", result["rows"][3])):
        (first, *_) = _saved_images(images_dir, row)
        settings = GenerationSettings(steps=1, width=64, height=64, seed=0)
        if mode == "category":
            prompt = f"cover album of {rows[0]['category']} song"
        else:
            prompt, settings.guidance_scale, settings.negative_prompt = "", 1.0, ""
        (cover,) = plain.generate(prompt, settings, allow_empty_prompt=True)
        np.testing.assert_array_equal(np.asarray(Image.open(first)), np.asarray(cover.image))


def test_real_covers_clip_score_matches_the_clip_model_itself(setup):
    """The encoder path (get_*_features) against CLIPModel.forward's own cosine logits."""
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    encoder = evaluate.ClipEncoder(str(setup["clip"]), batch_size=3)
    rows = [json.loads(line) for line in (setup["data"] / "validation" / "metadata.jsonl").open()]
    images = [Image.open(setup["data"] / "validation" / r["file_name"]) for r in rows]
    texts = [r["text"] for r in rows]
    ours = evaluate.text_scores(encoder.images(images), encoder.texts(texts), np.arange(4))

    model = CLIPModel.from_pretrained(setup["clip"]).eval()
    tokens = AutoTokenizer.from_pretrained(setup["clip"])(texts, padding=True, return_tensors="pt")
    pixels = AutoImageProcessor.from_pretrained(setup["clip"])(images, return_tensors="pt")
    with torch.no_grad():
        out = model(**tokens, pixel_values=pixels["pixel_values"])
    cosine = out.logits_per_image.diagonal() / model.logit_scale.exp()
    assert ours["clip_score"] == pytest.approx(max(100 * cosine.mean().item(), 0), abs=1e-3)
    ranks = (out.logits_per_image >= out.logits_per_image.diagonal()[:, None]).sum(1)
    assert ours["mean_rank"] == pytest.approx(ranks.float().mean().item())


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "nothing to evaluate"),
        (["--diffusers", "::lora"], "MODEL or MODEL::LORA"),
        (["--diffusers", "model::"], "MODEL or MODEL::LORA"),
        (["--gan", "g", "--out", "results.json"], "--out must end in .md"),
        (["--gan", "g", "--num_images_per_prompt", "0"], "--num_images_per_prompt must be >= 1"),
        (["--gan", "g", "--max_prompts", "1"], "--max_prompts must be >= 2"),
        (["--gan", "g", "--seed", "-1"], "--seed must be >= 0"),
        (["--diffusers", "m", "--steps", "500"], "diffusion settings: steps must be"),
        (["--diffusers", "m", "--resolution", "100"], "width must be a multiple of 8"),
    ],
)
def test_parse_args_rejects_bad_flags(flags, message, capsys):
    base = ["--data_dir", "d", "--out", "r.md"]
    with pytest.raises(SystemExit):
        evaluate.parse_args(base + flags)
    assert message in capsys.readouterr().err


def test_bad_inputs_fail_with_the_culprit_named(setup, tmp_path):
    gan = str(setup["gans"]["prompt"])
    _args = lambda *a: globals()["_args"](*a, out="failed.md")  # noqa: E731
    with pytest.raises(DatasetError, match="splits found: train, validation"):
        evaluate.main(evaluate.parse_args(_args(setup, "--gan", gan, "--split", "test")))
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        evaluate.main(evaluate.parse_args(_args(setup, "--gan", str(tmp_path / "none.pt"))))
    with pytest.raises(evaluate.EvaluationError, match="cannot load CLIP model"):
        evaluate.main(
            evaluate.parse_args(_args(setup, "--gan", gan) + ["--clip_model", str(tmp_path)])
        )
    with pytest.raises(evaluate.EvaluationError, match="has no model_index.json"):
        evaluate.main(evaluate.parse_args(_args(setup, "--diffusers", str(tmp_path))))
    one = write_cover_dataset(tmp_path / "one", n_train=2, n_validation=1, size=16)
    with pytest.raises(DatasetError, match="need at least 2 held-out rows"):
        evaluate.main(evaluate.parse_args(_args(setup, "--gan", gan) + ["--data_dir", str(one)]))
    assert not (setup["root"] / "failed.md").exists(), "a failed run must not leave a table"


def test_unwritable_outputs_fail_in_one_line_before_anything_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # nothing here exists (data, GAN, CLIP model): the output error must come first
    base = [sys.executable, "-m", "train.evaluate", "--data_dir", str(tmp_path / "no-data"),
            "--gan", str(tmp_path / "gan"), "--clip_model", str(tmp_path / "clip")]  # fmt: skip
    cases = {
        ("--out", str(blocker / "results.md")): f"the folder of --out '{blocker}' is a file",
        ("--out", str(tmp_path / "r.md"), "--images_dir", str(blocker / "img")): (
            f"--images_dir '{blocker / 'img'}' cannot be created"
        ),
    }
    for flags, message in cases.items():
        result = subprocess.run(
            [*base, *flags], cwd=Path(__file__).resolve().parents[2], capture_output=True,
            text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        assert result.returncode == 1 and "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {message}"), line
    assert blocker.read_text() == "not a folder" and not (tmp_path / "r.md").exists()
