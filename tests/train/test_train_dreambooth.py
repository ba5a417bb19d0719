"""train.train_dreambooth: DreamBooth with prior preservation on a tiny random SD pipeline, its
flags, and the command line from before the split (``--train_data_dir``), which still trains.

(SDXL DreamBooth: test_train_sdxl.py; captioned runs: test_train_text_to_image.py.)
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_models import save_tiny_sd
from tests.train_data import fresh_accelerate_state, write_dataset, write_images  # noqa: F401
from train.finetune.export import OUTPUT_INFO
from train.train_dreambooth import MOVED, cli, main, parse_args

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("base") / "tiny-sd")


def args_for(base, out, *extra):
    return parse_args([
        "--pretrained_model_name_or_path", str(base), "--output_dir", str(out),
        "--resolution", "32", "--train_batch_size", "2", "--seed", "7", *extra,
    ])  # fmt: skip


def test_dreambooth_with_prior_preservation_generates_class_images(base, tmp_path):
    instance, classes = tmp_path / "instance", tmp_path / "class"
    write_images(instance, 2)
    write_images(classes, 1, seed=3)
    out = tmp_path / "db"
    extra = ["--instance_data_dir", str(instance), "--instance_prompt", "cover album of sks",
             "--with_prior_preservation", "--class_data_dir", str(classes), "--class_prompt",
             "cover album", "--num_class_images", "2", "--class_inference_steps", "2",
             "--use_lora", "--max_train_steps", "1", "--train_batch_size", "1"]  # fmt: skip
    result = main(args_for(base, out, *extra))

    assert result.global_step == 1
    assert len(list(classes.glob("*.png"))) == 2  # the missing one was painted by the base
    assert not list(classes.glob(".*"))  # no temp files left behind
    assert (out / "pytorch_lora_weights.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert "instance_prompt: cover album of sks" in card and "- dreambooth" in card
    assert "prior preservation" in card


def test_the_old_captioned_command_still_trains_and_names_the_new_one(base, tmp_path):
    data = write_dataset(tmp_path / "covers", n=2)
    out = tmp_path / "old"
    argv = ["--pretrained_model_name_or_path", str(base), "--train_data_dir", str(data),
            "--output_dir", str(out), "--resolution", "32", "--use_lora", "--max_train_steps",
            "1", "--seed", "7", "--caption_mode", "category"]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "train.train_dreambooth", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "python -m train.train_text_to_image" in proc.stderr  # says what to run instead
    info = json.loads((out / OUTPUT_INFO).read_text())
    assert info["kind"] == "lora" and info["caption_mode"] == "category"
    assert (out / "albumcover_recipe.json").is_file()

    with pytest.warns(FutureWarning, match="train.train_text_to_image"):
        args = parse_args(argv)
    assert args.kind == "text_to_image" and "train_text_to_image" in MOVED


BAD_FLAGS = [
    ([], "give --instance_data_dir and --instance_prompt"),
    ([], "give --train_data_dir to `python -m train.train_text_to_image`"),
    (["--train_data_dir", "d", "--instance_data_dir", "i"], "two modes"),
    (["--instance_data_dir", "i"], "needs --instance_prompt"),
    (["--instance_prompt", "p"], "needs --instance_data_dir"),
    (["--train_data_dir", "d", "--instance_prompt", "p"], "needs --instance_data_dir"),
    (["--train_data_dir", "d", "--with_prior_preservation"], "needs --instance_data_dir"),
    (["--instance_data_dir", "i", "--instance_prompt", "p", "--caption_mode", "none"],
     "--caption_mode is for --train_data_dir"),
    (["--instance_data_dir", "i", "--instance_prompt", "p", "--with_prior_preservation",
      "--class_prompt", "c"], "needs --class_data_dir"),
    (["--instance_data_dir", "i", "--instance_prompt", "p", "--with_prior_preservation",
      "--class_data_dir", "c"], "needs --class_prompt"),
    (["--instance_data_dir", "i", "--instance_prompt", "p", "--num_class_images", "0"],
     "--num_class_images must be >= 1"),
    (["--instance_data_dir", "i", "--instance_prompt", "p", "--prior_loss_weight", "-1"],
     "--prior_loss_weight must be >= 0"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS)
def test_impossible_flags_are_rejected(argv, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        parse_args(["--pretrained_model_name_or_path", "m", "--output_dir", str(tmp_path), *argv])


def test_cli_exit_codes(base, tmp_path, capsys):
    assert cli(["--pretrained_model_name_or_path", str(base)]) == 2
    assert "--instance_data_dir" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = cli(["--pretrained_model_name_or_path", str(tmp_path / "no-model"),
                "--instance_data_dir", str(empty), "--instance_prompt", "p",
                "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 1
    assert "has no images" in capsys.readouterr().err  # read before any model loads
