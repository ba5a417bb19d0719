"""train.train_text_to_image on a tiny random SD 1.x pipeline: full and LoRA runs, exact and
SIGKILL resume, checkpoints, outputs loaded by the app's CoverGenerator, model card, push failure,
caption modes, bad input. (SDXL runs: test_train_sdxl.py; DreamBooth: test_train_dreambooth.py,
beside this file.)

Runs call ``main(parse_args([...]))`` in-process; some tests run the real ``python -m`` entry point.
"""

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from tests.tiny_models import save_tiny_sd
from tests.train_data import (  # noqa: F401  (fresh_accelerate_state: an autouse fixture)
    CATEGORIES,
    PROMPT,
    fresh_accelerate_state,
    render,
    write_dataset,
    write_images,
)
from train.finetune.checkpoints import find_latest_checkpoint, list_checkpoints, remove_stale_temp
from train.finetune.export import OUTPUT_INFO
from train.finetune.family import TrainingError
from train.imagefolder import CoverDataset, DatasetError, read_image_folder, read_metadata
from train.outputs import RunExistsError
from train.push import PushError, push_folder
from train.train_dreambooth import cli as dreambooth_cli
from train.train_text_to_image import cli, main, parse_args

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("base") / "tiny-sd")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("covers"))


def args_for(base, out, *extra, data=None):
    data_flags = [] if data is None else ["--train_data_dir", str(data)]
    return parse_args([
        "--pretrained_model_name_or_path", str(base), "--output_dir", str(out),
        "--resolution", "32", "--train_batch_size", "2", "--seed", "7", *data_flags, *extra,
    ])  # fmt: skip


# --------------------------------------------------------------------------- training runs


def test_full_fine_tune_writes_a_pipeline_the_app_loads(base, dataset, tmp_path):
    from albumcover.paint.generator import CoverGenerator
    from albumcover.prompts import DEFAULT_STYLE, STYLES

    out = tmp_path / "full"
    extra = ["--max_train_steps", "2", "--checkpointing_steps", "2", "--learning_rate", "1e-3",
             "--use_ema", "--snr_gamma", "5", "--noise_offset", "0.1", "--random_flip"]  # fmt: skip
    result = main(args_for(base, out, *extra, data=dataset))

    assert result.global_step == 2
    assert (out / "model_index.json").is_file()
    assert [step for step, _ in list_checkpoints(out)] == [2]
    name = "diffusion_pytorch_model.safetensors"
    before, after = load_file(base / "unet" / name), load_file(out / "unet" / name)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before), "the UNet did not train"
    info = json.loads((out / OUTPUT_INFO).read_text())
    assert info["kind"] == "full" and info["base_model"] == str(base) and info["use_ema"]

    card = (out / "README.md").read_text()
    assert "license: creativeml-openrail-m" in card
    assert f"base_model: {base}" in card
    assert STYLES[DEFAULT_STYLE].template in card  # the app's own template
    assert "full UNet fine-tune" in card and "| steps | 2 |" in card
    assert "| Min-SNR gamma | 5 |" in card and "| noise offset | 0.1 |" in card
    assert f"`{PROMPT} 0`" in card  # an example prompt from the data

    render(CoverGenerator.from_pretrained(out, device="cpu", safety_checker=False))


def test_lora_with_text_encoder_loads_on_its_base(base, dataset, tmp_path):
    from albumcover.paint.generator import CoverGenerator

    out = tmp_path / "lora"
    extra = ["--use_lora", "--rank", "2", "--train_text_encoder", "--max_train_steps", "2",
             "--learning_rate", "1e-3", "--validation_prompt", PROMPT, "--num_validation_images",
             "1", "--validation_inference_steps", "2"]  # fmt: skip
    result = main(args_for(base, out, *extra, data=dataset))

    assert result.global_step == 2
    weights = load_file(out / "pytorch_lora_weights.safetensors")
    assert any(k.startswith("unet.") for k in weights)
    assert any(k.startswith("text_encoder.") for k in weights)
    ups = [v for k, v in weights.items() if "lora_B" in k or "lora.up" in k]
    assert ups and any(v.abs().sum() > 0 for v in ups), "LoRA B starts at zero and must train"
    assert not (out / "model_index.json").exists()  # only the adapter, not a copy of the base
    info = json.loads((out / OUTPUT_INFO).read_text())
    assert info == info | {
        "kind": "lora",
        "base_model": str(base),
        "rank": 2,
        "weight_name": "pytorch_lora_weights.safetensors",
    }
    assert (out / "validation" / "step-2" / "00.png").is_file()
    card = (out / "README.md").read_text()
    assert "LoRA, rank 2" in card and "validation/step-2/00.png" in card
    assert f'CoverGenerator.from_pretrained("{base}", lora=' in card

    lora = CoverGenerator.from_pretrained(base, lora=out, device="cpu", safety_checker=False)
    plain = CoverGenerator.from_pretrained(base, device="cpu", safety_checker=False)
    assert not np.array_equal(np.asarray(render(lora)), np.asarray(render(plain)))


def test_resume_continues_exactly_where_an_uninterrupted_run_would_be(base, dataset, tmp_path):
    # batch 1 x 2 accumulation over 4 images: 2 optimizer steps per epoch, so resuming at step 1
    # skips half an epoch and step 3 crosses into the next one
    common = ["--use_lora", "--train_batch_size", "1", "--gradient_accumulation_steps", "2",
              "--learning_rate", "1e-2", "--random_flip", "--checkpointing_steps", "1"]  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    limit = ["--checkpoints_total_limit", "1"]
    main(args_for(base, straight, *common, *limit, "--max_train_steps", "3", data=dataset))
    assert [s for s, _ in list_checkpoints(straight)] == [3]  # the limit pruned steps 1 and 2

    main(args_for(base, resumed, *common, "--max_train_steps", "1", data=dataset))
    saved = torch.load(resumed / "checkpoint-1" / "optimizer.bin", weights_only=True)
    result = main(args_for(base, resumed, *common, "--max_train_steps", "3",
                           "--resume_from_checkpoint", "latest", data=dataset))  # fmt: skip
    assert result.resumed_from == resumed / "checkpoint-1"
    assert (result.resumed_step, result.global_step) == (1, 3)

    # Adam went on from the saved state: 2 more steps on top of the saved count ...
    state = torch.load(resumed / "checkpoint-3" / "optimizer.bin", weights_only=True)["state"]
    assert state and state.keys() == saved["state"].keys()
    assert all(s["step"] == saved["state"][i]["step"] + 2 for i, s in state.items())
    # ... and everything (weights, moments, data order, RNG) matches the uninterrupted run
    reference = torch.load(straight / "checkpoint-3" / "optimizer.bin", weights_only=True)
    for i, s in state.items():
        torch.testing.assert_close(s["exp_avg"], reference["state"][i]["exp_avg"])
        torch.testing.assert_close(s["exp_avg_sq"], reference["state"][i]["exp_avg_sq"])
    a = load_file(straight / "checkpoint-3" / "unet_lora.safetensors")
    b = load_file(resumed / "checkpoint-3" / "unet_lora.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key])

    # a checkpoint cannot be resumed as something else, nor with another seed
    with pytest.raises(TrainingError, match="use_lora=True"):
        main(args_for(base, resumed, "--resume_from_checkpoint", "checkpoint-3", data=dataset))
    with pytest.raises(TrainingError, match="--seed 7"):
        main(parse_args(["--pretrained_model_name_or_path", str(base), "--train_data_dir",
                         str(dataset), "--output_dir", str(resumed), "--use_lora", "--seed", "8",
                         "--resume_from_checkpoint", "latest"]))  # fmt: skip


def test_a_killed_run_resumes_from_its_last_complete_checkpoint(base, dataset, tmp_path):
    out = tmp_path / "killed"
    argv = ["--pretrained_model_name_or_path", str(base), "--train_data_dir", str(dataset),
            "--output_dir", str(out), "--resolution", "32", "--use_lora", "--seed", "7",
            "--max_train_steps", "1000", "--checkpointing_steps", "1"]  # fmt: skip
    command = [sys.executable, "-m", "train.train_text_to_image", *argv]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, **quiet)
    try:
        deadline = time.monotonic() + 120
        while len(list_checkpoints(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no cleanup, possibly in the middle of a save
        proc.wait()
    assert len(list_checkpoints(out)) >= 2, "the run never checkpointed"
    last = list_checkpoints(out)[-1][0]

    result = main(args_for(base, out, "--use_lora", "--max_train_steps", str(last + 1),
                           "--checkpointing_steps", "1", "--resume_from_checkpoint", "latest",
                           data=dataset))  # fmt: skip
    assert (result.resumed_step, result.global_step) == (last, last + 1)
    assert not list(out.glob(".tmp-*")), "a half-written checkpoint was left behind"
    assert (out / "pytorch_lora_weights.safetensors").is_file()


def test_latest_is_the_highest_complete_checkpoint(tmp_path):
    for name in ("checkpoint-9", "checkpoint-10", "checkpoint-12", ".tmp-checkpoint-11", "x-20"):
        (tmp_path / name).mkdir()
    for name in ("checkpoint-9", "checkpoint-10"):
        (tmp_path / name / "training_state.json").write_text("{}")
    # checkpoint-12 has no state file (its save never finished); the temp folder is a killed save
    assert find_latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    remove_stale_temp(tmp_path)
    assert not (tmp_path / ".tmp-checkpoint-11").exists()
    assert find_latest_checkpoint(tmp_path / "missing") is None
    with pytest.raises(ValueError, match="not a complete checkpoint"):
        parse_args(["--pretrained_model_name_or_path", "x", "--train_data_dir", "d", "--output_dir",
                    str(tmp_path), "--resume_from_checkpoint", "checkpoint-12"])  # fmt: skip


def test_entry_point_push_failure_keeps_the_output_and_the_token_secret(base, dataset, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    secret = "hf_ThisIsNotARealTokenButMustNeverBePrinted"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {
        "OMP_NUM_THREADS": "1",
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
        "HF_TOKEN": secret,
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    out = tmp_path / "pushed"
    argv = ["--pretrained_model_name_or_path", str(base), "--train_data_dir", str(dataset),
            "--output_dir", str(out), "--resolution", "32", "--use_lora", "--max_train_steps",
            "1", "--push_to_hub", "--hub_model_id", "someone/albumcover-test"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "train.train_text_to_image", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    assert secret not in output
    assert "someone/albumcover-test" in output and "local output" in output
    assert "hf auth login" in output and f"python -m train.push {out}" in output
    for name in ("pytorch_lora_weights.safetensors", "README.md", OUTPUT_INFO):
        assert (out / name).is_file(), name


def test_push_without_a_server_raises_push_error(tmp_path):
    (tmp_path / "README.md").write_text("card")
    with pytest.raises(PushError, match="local output .* is complete"):
        push_folder(tmp_path, "someone/x", endpoint="http://127.0.0.1:9")
    with pytest.raises(PushError, match="not a folder"):
        push_folder(tmp_path / "missing", "someone/x", endpoint="http://127.0.0.1:9")


# --------------------------------------------------------------------------- reruns


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_second_run_into_the_same_folder_refuses_and_keeps_every_byte(
    base, dataset, tmp_path, capsys
):
    out = tmp_path / "run"
    lora = ["--use_lora", "--max_train_steps", "1", "--checkpointing_steps", "1"]
    main(args_for(base, out, *lora, data=dataset))
    before = snapshot(out)
    assert "checkpoint-1/training_state.json" in before and OUTPUT_INFO in before

    with pytest.raises(RunExistsError, match="already holds another run"):
        main(args_for(base, out, *lora, data=dataset))
    # the command line: one line, exit 1, before the (missing) dataset or base model is read
    argv = ["--pretrained_model_name_or_path", str(tmp_path / "no-model"), "--train_data_dir",
            str(tmp_path / "no-data"), "--output_dir", str(out)]  # fmt: skip
    capsys.readouterr()  # drop the first run's progress bars
    assert cli(argv) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: --output_dir {out} already holds another run (albumcover_training.json, "
        "checkpoint-1, pytorch_lora_weights.safetensors): continue it with "
        "--resume_from_checkpoint latest, replace it with --overwrite_output_dir, or choose "
        "another --output_dir"
    ]
    # `latest` with only final weights (no checkpoint) would start afresh over them: refused too
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / "pytorch_lora_weights.safetensors").write_bytes(b"weights of an earlier run")
    with pytest.raises(RunExistsError, match="pytorch_lora_weights.safetensors"):
        main(args_for(base, finished, *lora, "--resume_from_checkpoint", "latest", data=dataset))
    assert snapshot(out) == before
    assert snapshot(finished) == {"pytorch_lora_weights.safetensors": b"weights of an earlier run"}

    # continuing it is what resume is for
    result = main(args_for(base, out, "--use_lora", "--max_train_steps", "2",
                           "--resume_from_checkpoint", "latest", data=dataset))  # fmt: skip
    assert (result.resumed_step, result.global_step) == (1, 2)


def test_overwrite_output_dir_replaces_the_earlier_run(base, dataset, tmp_path, caplog):
    from albumcover.paint.generator import CoverGenerator

    out = tmp_path / "run"
    main(args_for(base, out, "--max_train_steps", "2", "--checkpointing_steps", "1", data=dataset))
    assert (out / "model_index.json").is_file() and (out / "unet").is_dir()
    (out / "notes.txt").write_text("mine")
    with caplog.at_level(logging.WARNING):
        main(args_for(base, out, "--use_lora", "--max_train_steps", "1", "--checkpointing_steps",
                      "1", "--overwrite_output_dir", data=dataset))  # fmt: skip
    assert "--overwrite_output_dir" in caplog.text and "checkpoint-2" in caplog.text
    # no trace of the full fine-tune is left to be mistaken for the new LoRA run ...
    assert [step for step, _ in list_checkpoints(out)] == [1]
    assert not (out / "model_index.json").exists() and not (out / "unet").exists()
    assert json.loads((out / OUTPUT_INFO).read_text())["kind"] == "lora"
    assert (out / "notes.txt").read_text() == "mine"  # ... and what is not the run's stays
    render(CoverGenerator.from_pretrained(base, lora=out, device="cpu", safety_checker=False))


def test_an_unwritable_output_dir_fails_in_one_line_before_anything_loads(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["--pretrained_model_name_or_path", str(tmp_path / "no-model"), "--train_data_dir",
            str(tmp_path / "no-data"), "--output_dir", str(blocker / "out")]  # fmt: skip
    assert cli(argv) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: --output_dir '{blocker / 'out'}' cannot be created: Not a directory"
    ]
    # DreamBooth's class images: their folder is checked before the base model loads to paint them
    write_images(tmp_path / "instance", 2)
    argv = ["--pretrained_model_name_or_path", str(tmp_path / "no-model"), "--output_dir",
            str(tmp_path / "out"), "--instance_data_dir", str(tmp_path / "instance"),
            "--instance_prompt", "a cover", "--with_prior_preservation", "--class_prompt",
            "a cover", "--class_data_dir", str(blocker / "class")]  # fmt: skip
    assert dreambooth_cli(argv) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: --class_data_dir '{blocker / 'class'}' cannot be created: Not a directory"
    )


# --------------------------------------------------------------------------- caption modes


def read_card_and_recipe(out):
    from albumcover.recipe import read_recipe

    return (out / "README.md").read_text(), read_recipe(out)


@pytest.mark.parametrize("mode", ["category", "none"])
def test_caption_modes_train_on_the_category_or_nothing_and_say_so(base, dataset, tmp_path, mode):
    from albumcover.paint.generator import CoverGenerator
    from train.finetune.validation import paint

    out = tmp_path / mode
    result = main(args_for(base, out, "--use_lora", "--max_train_steps", "1",
                           "--caption_mode", mode, "--validation_prompt", PROMPT,
                           "--num_validation_images", "1", "--validation_inference_steps", "1",
                           data=dataset))  # fmt: skip
    assert result.global_step == 1
    card, recipe = read_card_and_recipe(out)
    assert recipe.caption_mode == mode and recipe.base_model == str(base)
    assert json.loads((out / OUTPUT_INFO).read_text())["caption_mode"] == mode
    assert f"- caption mode: `{mode}`" in card and f"| caption mode | {mode} |" in card
    assert f"`{PROMPT} 0`" not in card  # the full captions were not what it trained on
    if mode == "category":
        assert all(f"`cover album of {c} song`" in card for c in CATEGORIES)
    else:
        assert "empty captions" in card
    # float32 as the validation painted (the training's dtype), not bf16 where the CPU has it
    app = CoverGenerator.from_pretrained(
        base, lora=out, device="cpu", safety_checker=False, dtype="float32"
    )
    render(app)
    # validation painted as the app serves the mode: a `none` model gets the empty prompt
    # without guidance, whatever --validation_prompt says
    (image,) = paint(app, PROMPT, num_images=1, steps=1, size=32, seed=7,
                     unconditional=mode == "none")  # fmt: skip
    saved = np.asarray(Image.open(out / "validation" / "step-1" / "00.png").convert("RGB"))
    np.testing.assert_array_equal(saved, np.asarray(image))
    (other,) = paint(app, PROMPT, num_images=1, steps=1, size=32, seed=7,
                     unconditional=mode != "none")  # fmt: skip
    assert not np.array_equal(saved, np.asarray(other))


def test_the_captions_each_mode_trains_on(dataset):
    from albumcover.recipe import CaptionRecipe
    from train.train_text_to_image import read_examples

    args = parse_args(["--pretrained_model_name_or_path", "m", "--train_data_dir", str(dataset)])
    captions = {}
    for mode in ("prompt", "category", "none"):
        examples = read_examples(args, CaptionRecipe(caption_mode=mode))
        captions[mode] = [e.caption for e in examples]
    assert captions["prompt"] == [f"{PROMPT} {i}" for i in range(4)]
    assert captions["category"] == [f"cover album of {CATEGORIES[i % 2]} song" for i in range(4)]
    assert captions["none"] == [""] * 4


def test_the_dataset_recipe_travels_into_the_model(base, tmp_path):
    from albumcover.recipe import CaptionRecipe

    data = write_dataset(tmp_path / "covers", n=2)
    CaptionRecipe.for_style("minimal", caption_mode="category", top=3).save(data)
    out = tmp_path / "out"
    main(args_for(base, out, "--use_lora", "--max_train_steps", "1", data=data))
    card, recipe = read_card_and_recipe(out)
    # the dataset's recipe, its mode kept (no --caption_mode), the base model filled in
    assert (recipe.style, recipe.top, recipe.caption_mode) == ("minimal", 3, "category")
    assert recipe.base_model == str(base)
    assert "- style: `minimal`" in card and "`cover album of rock song`" in card

    # a resumed run keeps its caption mode
    main(args_for(base, out, "--use_lora", "--max_train_steps", "1", "--overwrite_output_dir",
                  "--checkpointing_steps", "1", data=data))  # fmt: skip
    with pytest.raises(TrainingError, match="caption_mode='category'"):
        main(args_for(base, out, "--use_lora", "--max_train_steps", "2", "--caption_mode",
                      "prompt", "--resume_from_checkpoint", "latest", data=data))  # fmt: skip


def test_caption_mode_input_errors_name_the_file(base, tmp_path):
    data = write_dataset(tmp_path / "covers", n=2)
    metadata = data / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    del rows[1]["category"]
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"metadata.jsonl line 2: no 'category' field"):
        main(args_for(base, out, "--caption_mode", "category", data=data))
    main(args_for(base, out, "--caption_mode", "none", "--max_train_steps", "1", "--use_lora",
                  data=data))  # other modes need no category  # fmt: skip
    (data / "albumcover_recipe.json").write_text('{"style": "nope"}')
    with pytest.raises(DatasetError, match="recipe style 'nope'"):
        main(args_for(base, tmp_path / "out2", data=data))
    with pytest.raises(SystemExit):
        parse_args(["--pretrained_model_name_or_path", "m", "--train_data_dir", "d",
                    "--caption_mode", "tags"])  # fmt: skip


# --------------------------------------------------------------------------- bad input


def test_cli_exit_codes_for_bad_flags_and_bad_data(base, tmp_path, capsys):
    assert cli(["--pretrained_model_name_or_path", str(base)]) == 2
    assert "--train_data_dir" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    # the dataset is read before any model: a missing base model is never reached
    code = cli(["--pretrained_model_name_or_path", str(tmp_path / "no-model"),
                "--train_data_dir", str(empty), "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "no metadata.jsonl" in capsys.readouterr().err


def test_unloadable_base_model_is_a_training_error(dataset, tmp_path):
    with pytest.raises(TrainingError, match="cannot load model_index.json of .*no such folder"):
        main(args_for(tmp_path / "no-model", tmp_path / "out", data=dataset))


BAD_FLAGS = [
    ([], "give --train_data_dir"),
    (["--train_data_dir", "d", "--rank", "4"], "needs --use_lora"),
    (["--train_data_dir", "d", "--use_lora", "--rank", "0"], "--rank must be >= 1"),
    (["--train_data_dir", "d", "--use_lora", "--use_ema"], "--use_ema"),
    (["--train_data_dir", "d", "--resolution", "100"], "multiple of 8"),
    (["--train_data_dir", "d", "--max_train_steps", "0"], "--max_train_steps must be >= 1"),
    (["--train_data_dir", "d", "--train_batch_size", "0"], "--train_batch_size must be >= 1"),
    (["--train_data_dir", "d", "--learning_rate", "0"], "--learning_rate must be > 0"),
    (["--train_data_dir", "d", "--snr_gamma", "-1"], "--snr_gamma must be > 0"),
    (["--train_data_dir", "d", "--checkpoints_total_limit", "0"], "must be >= 1"),
    (["--train_data_dir", "d", "--hub_token", "hf_x"], "hf auth login"),
    (["--train_data_dir", "d", "--resume_from_checkpoint", "checkpoint-5"], "no such checkpoint"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS)
def test_impossible_flags_are_rejected(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        parse_args(["--pretrained_model_name_or_path", "m", "--output_dir", str(tmp_path), *argv])


def test_flags_that_need_hardware_or_packages(tmp_path):
    import importlib.util

    def check(*argv):
        return parse_args(["--pretrained_model_name_or_path", "m", "--train_data_dir", "d",
                           "--output_dir", str(tmp_path), *argv])  # fmt: skip

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
            check("--mixed_precision", "fp16")
        assert check("--mixed_precision", "bf16").mixed_precision == "bf16"
    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(ValueError, match="pip install bitsandbytes"):
            check("--use_8bit_adam")
    for tracker in ("tensorboard", "wandb"):
        if importlib.util.find_spec(tracker) is None:
            with pytest.raises(ValueError, match=f"pip install {tracker}"):
                check("--report_to", tracker)
    with pytest.raises(SystemExit):
        check("--mixed_precision", "fp8")
    args = check("--use_lora", "--push_to_hub")
    assert (args.rank, args.learning_rate, args.hub_model_id) == (4, 1e-4, tmp_path.name)
    assert check().learning_rate == 5e-6


def write_metadata(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_images(folder, 1)
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


GOOD_ROW = json.dumps({"file_name": "cover-0.png", "text": PROMPT})
BAD_ROWS = [
    ("{not json", "line 2: not valid JSON"),
    ('["a list"]', "line 2: expected a JSON object"),
    (json.dumps({"text": PROMPT}), "line 2: no 'file_name' field"),
    (json.dumps({"file_name": "cover-0.png"}), "line 2: no 'text' field"),
    (json.dumps({"file_name": "cover-0.png", "text": "  "}), "line 2: 'text' must be a non-empty"),
    (json.dumps({"file_name": 3, "text": PROMPT}), "line 2: 'file_name' must be a file name"),
    (json.dumps({"file_name": "gone.png", "text": PROMPT}), r"line 2: image .*gone.png does not"),
    (json.dumps({"file_name": "junk.png", "text": PROMPT}), r"line 2: cannot read image .*junk"),
    (json.dumps({"file_name": "half.png", "text": PROMPT}), r"line 2: cannot read image .*half"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
def test_broken_metadata_names_file_and_row(row, message, tmp_path):
    folder = write_metadata(tmp_path / "train", [GOOD_ROW, row])
    (folder / "junk.png").write_bytes(b"not an image at all")
    whole = (folder / "cover-0.png").read_bytes()
    (folder / "half.png").write_bytes(whole[: len(whole) // 2])  # a truncated download
    with pytest.raises(DatasetError, match=message) as error:
        read_metadata(tmp_path)  # the dataset root: train/ is found inside
    assert str(folder / "metadata.jsonl") in str(error.value)


def test_dataset_folders_that_cannot_be_used(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        read_metadata(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no metadata.jsonl"):
        read_metadata(tmp_path)
    with pytest.raises(DatasetError, match="has no rows"):
        read_metadata(write_metadata(tmp_path / "blank", [""]))
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "metadata.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match="cannot read .*metadata.jsonl"):
        read_metadata(tmp_path / "latin1")
    with pytest.raises(DatasetError, match="has no images"):
        read_image_folder(tmp_path, "p", "--instance_data_dir")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 nope")
    with pytest.raises(DatasetError, match="--instance_data_dir image bad.jpg: cannot read"):
        read_image_folder(tmp_path, "p", "--instance_data_dir")


def test_dataset_items_are_a_pure_function_of_seed_epoch_and_index(base, dataset):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(base / "tokenizer")
    examples = read_metadata(dataset)
    assert [e.caption for e in examples] == [f"{PROMPT} {i}" for i in range(4)]

    def items(epoch, seed=0):
        data = CoverDataset(examples, tokenizer, 32, random_flip=True, seed=seed)
        data.set_epoch(epoch)
        return [data[i]["pixel_values"] for i in range(len(data))]

    first = items(0)
    assert all(x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1 for x in first)
    assert all(torch.equal(a, b) for a, b in zip(first, items(0), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, items(1), strict=True))
    ids = CoverDataset(examples, tokenizer, 32)[0]["input_ids"]
    assert ids.shape == (tokenizer.model_max_length,)


def test_square_crop_reports_where_it_cut_in_the_image_it_returns():
    import random

    from train.imagefolder import square_crop

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    resized = image.resize((20, 12), Image.Resampling.BILINEAR)  # short side 24 -> 12
    seen = set()
    for seed in range(20):
        crop, (top, left) = square_crop(
            image, 12, rng=random.Random(seed), random_crop=True, flip=True
        )
        flipped = not np.array_equal(
            np.asarray(crop), np.asarray(resized.crop((left, 0, left + 12, 12)))
        )
        view = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flipped else resized
        assert top == 0 and 0 <= left <= 8
        assert np.array_equal(np.asarray(crop), np.asarray(view.crop((left, 0, left + 12, 12))))
        seen.add(flipped)
    assert seen == {True, False}  # both branches ran
    centre, corner = square_crop(image)
    assert centre.size == (24, 24) and corner == (0, 8)
    with pytest.raises(ValueError, match="need an rng"):
        square_crop(image, 12, random_crop=True)
