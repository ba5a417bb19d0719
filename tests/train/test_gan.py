"""train.gan: the three DCGAN baselines train, checkpoint, resume exactly and sample."""

import json
import logging
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.synthetic_covers import CATEGORIES, write_cover_dataset
from train.gan import train as gan_train
from train.gan.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from train.gan.data import (
    PAD,
    UNK,
    DatasetError,
    Vocabulary,
    category_vocabulary,
    collate_conditions,
    read_metadata,
    split_dir,
    tokenize,
)
from train.gan.model import GanConfig, build_models
from train.gan.sample import GanSampler, SampleError
from train.gan.sample import main as sample_main
from train.gan.sample import parse_args as sample_args
from train.outputs import RunExistsError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # see conftest.one_torch_thread
TINY = [
    "--resolution", "64", "--train_batch_size", "4", "--g_features", "8", "--d_features", "8",
    "--latent_dim", "8", "--embed_dim", "8", "--seed", "3", "--num_sample_images", "4",
    "--logging_steps", "1",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_cover_dataset(tmp_path_factory.mktemp("covers"), n_train=8, n_validation=4)


def train(dataset, output_dir, condition, *extra):
    flags = [
        "--condition", condition, "--train_data_dir", str(dataset), "--output_dir", str(output_dir),
        *TINY, *extra,
    ]  # fmt: skip
    if condition == "prompt" and "--vocab_min_count" not in extra:
        flags += ["--vocab_min_count", "1"]
    return gan_train.main(gan_train.parse_args(flags))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """One 2-step run per condition: condition -> output folder."""
    runs = {}
    for condition in ("none", "category", "prompt"):
        out = tmp_path_factory.mktemp(f"gan-{condition}")
        train(dataset, out, condition, "--max_train_steps", "2", "--checkpointing_steps", "1",
              "--sample_steps", "1")  # fmt: skip
        runs[condition] = out
    return runs


# --- training -----------------------------------------------------------------------------


@pytest.mark.parametrize("condition", ["none", "category", "prompt"])
def test_training_writes_checkpoints_and_grids(trained, condition):
    out = trained[condition]
    assert (out / "latest").read_text().strip() == "checkpoint-2.pt"
    first, last = load_checkpoint(out / "checkpoint-1.pt"), load_checkpoint(out)
    assert (first["step"], last["step"]) == (1, 2)
    config = GanConfig.from_dict(last["config"])
    assert (config.condition, config.resolution, config.latent_dim) == (condition, 64, 8)
    # the weights moved between the two steps, and every part of the state is there
    changed = [
        not torch.equal(first["generator"][k], last["generator"][k]) for k in first["generator"]
    ]
    assert any(changed)
    for key in ("discriminator", "opt_g", "opt_d", "rng", "seed", "args"):
        assert key in last
    assert last["opt_g"]["state"], "optimizer state was not saved"
    # a 2x2 grid of 64 px images with 2 px padding, for each sampled step
    for step in (1, 2):
        grid = Image.open(out / "samples" / f"step-{step}.png")
        assert grid.size == (2 * 66 + 2, 2 * 66 + 2)
    if condition == "none":
        assert last["vocab"] is None
        assert not (out / "samples" / "conditions.txt").exists()
    else:
        lines = (out / "samples" / "conditions.txt").read_text().splitlines()
        assert len(lines) == 4
    if condition == "category":
        assert last["vocab"][0] == UNK and set(CATEGORIES) <= set(last["vocab"])
        assert config.num_embeddings == len(last["vocab"])
    if condition == "prompt":
        assert last["vocab"][:2] == [PAD, UNK] and "guitar" in last["vocab"]
        assert config.bag_mode == "sum"


def test_resume_continues_exactly(dataset, tmp_path):
    straight = train(dataset, tmp_path / "a", "prompt", "--max_train_steps", "4",
                     "--checkpointing_steps", "2")  # fmt: skip
    train(dataset, tmp_path / "b", "prompt", "--max_train_steps", "2")
    resumed = train(dataset, tmp_path / "b", "prompt", "--max_train_steps", "4",
                    "--resume_from_checkpoint", "latest")  # fmt: skip
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["step"] == b["step"] == 4
    for net in ("generator", "discriminator"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs after resume"
    for opt in ("opt_g", "opt_d"):
        for i, state in a[opt]["state"].items():
            assert state["step"] == b[opt]["state"][i]["step"]
            assert torch.equal(state["exp_avg_sq"], b[opt]["state"][i]["exp_avg_sq"])
    assert torch.equal(a["rng"]["noise"], b["rng"]["noise"])


def test_resume_loads_the_saved_optimizer_state(trained):
    state = load_checkpoint(trained["category"] / "checkpoint-1.pt")
    trainer = gan_train.GanTrainer(GanConfig.from_dict(state["config"]))
    trainer.load_state_dict(state)
    loaded = trainer.opt_d.state_dict()
    assert loaded["state"].keys() == state["opt_d"]["state"].keys()
    for i, saved in state["opt_d"]["state"].items():
        assert torch.equal(loaded["state"][i]["exp_avg"], saved["exp_avg"])


def test_resume_edge_cases(dataset, trained, tmp_path, caplog):
    # 'latest' with nothing saved yet starts fresh, as in the diffusers scripts
    with caplog.at_level(logging.INFO):
        path = train(dataset, tmp_path / "fresh", "none", "--max_train_steps", "1",
                     "--resume_from_checkpoint", "latest")  # fmt: skip
    assert "starting a fresh run" in caplog.text and load_checkpoint(path)["step"] == 1
    # an explicit path that is not there is an error, not a fresh start
    with pytest.raises(CheckpointError, match="not found"):
        train(
            dataset, tmp_path / "x", "none", "--resume_from_checkpoint", str(tmp_path / "nope.pt")
        )
    # the architecture flags must match the checkpoint's
    with pytest.raises(CheckpointError, match="--latent_dim 16 differs"):
        train(dataset, tmp_path / "y", "none", "--latent_dim", "16",
              "--resume_from_checkpoint", str(trained["none"]))  # fmt: skip
    with pytest.raises(CheckpointError, match="--condition category differs"):
        train(dataset, tmp_path / "y", "category",
              "--resume_from_checkpoint", str(trained["none"] / "checkpoint-1.pt"))  # fmt: skip
    # already at the requested step: nothing to train, the checkpoint is returned as is
    done = train(dataset, tmp_path / "z", "none", "--max_train_steps", "2",
                 "--resume_from_checkpoint", str(trained["none"]))  # fmt: skip
    assert done == trained["none"] / "checkpoint-2.pt"
    assert not (tmp_path / "z" / "latest").exists()


def test_bf16_autocast_and_mean_bags(dataset, tmp_path):
    path = train(dataset, tmp_path, "prompt", "--max_train_steps", "1", "--mixed_precision",
                 "bf16", "--bag_mode", "mean")  # fmt: skip
    state = load_checkpoint(path)
    assert state["config"]["bag_mode"] == "mean"
    sampler = GanSampler.from_checkpoint(path, device="cpu")
    assert sampler.generator.embed.mode == "mean"
    assert all(torch.isfinite(t).all() for t in state["generator"].values())


def test_bags_ignore_padding_and_modes_differ():
    for mode in ("sum", "mean"):
        config = GanConfig(condition="prompt", num_embeddings=10, embed_dim=4, bag_mode=mode)
        generator, _ = build_models(config)
        embed = generator.embed
        short = embed(torch.tensor([[3, 4]]))
        padded = embed(collate_conditions("prompt", [[3, 4], [5, 6, 7, 8]]))[:1]
        torch.testing.assert_close(short, padded)
        expected = embed.weight[3] + embed.weight[4]
        torch.testing.assert_close(short[0], expected if mode == "sum" else expected / 2)


def test_networks_at_128px_and_condition_checks():
    config = GanConfig(condition="category", resolution=128, num_embeddings=5, g_features=4,
                       d_features=4, latent_dim=6, embed_dim=3)  # fmt: skip
    generator, discriminator = build_models(config)
    z, cond = torch.randn(2, 6), torch.tensor([1, 4])
    images = generator(z, cond)
    assert images.shape == (2, 3, 128, 128) and images.abs().max() <= 1
    assert discriminator(images, cond).shape == (2,)
    with pytest.raises(ValueError, match="needs a condition"):
        generator(z)
    with pytest.raises(ValueError, match="shape"):
        generator(z, torch.tensor([[1, 2], [3, 4]]))
    with pytest.raises(ValueError, match="resolution"):
        GanConfig(resolution=96)
    with pytest.raises(ValueError, match="num_embeddings"):
        GanConfig(condition="prompt")
    with pytest.raises(ValueError, match="unknown GanConfig fields"):
        GanConfig.from_dict({"condition": "none", "depth": 3})


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--resolution", "96"], "invalid choice"),
        (["--bag_mode", "mean"], "only applies to --condition prompt"),
        (["--vocab_min_count", "2"], "only applies to --condition prompt"),
        (["--train_batch_size", "1"], "BatchNorm"),
        (["--learning_rate", "0"], "--learning_rate must be > 0"),
        (["--beta1", "1.0"], "--beta1 must be in"),
        (["--max_train_steps", "0"], "--max_train_steps must be >= 1"),
        (["--checkpointing_steps", "0"], "--checkpointing_steps must be >= 1"),
        (["--mixed_precision", "fp16", "--device", "cpu"], "fp16 needs a CUDA device"),
        (["--condition", "words"], "invalid choice"),
    ],
)
def test_parse_args_rejects_bad_flags(flags, message, capsys):
    base = ["--condition", "category", "--train_data_dir", "d", "--output_dir", "o"]
    with pytest.raises(SystemExit):
        gan_train.parse_args(base + flags)
    assert message in capsys.readouterr().err


# --- data ---------------------------------------------------------------------------------


def test_tokenize_and_vocabulary_with_unknown_words():
    assert tokenize("Album Cover, LO-FI beats; don't stop_now!") == [
        "album", "cover", "lo", "fi", "beats", "don't", "stop", "now",
    ]  # fmt: skip
    texts = ["dark synth", "dark guitar", "Dark piano", "bright synth"]
    vocab = Vocabulary.from_texts(texts, min_count=2)
    assert vocab.tokens == [PAD, UNK, "dark", "synth"]
    assert vocab.encode("DARK violin synth") == [2, vocab.unk, 3]
    assert Vocabulary.from_texts(texts, max_size=4).tokens == [PAD, UNK, "dark", "synth"]
    assert len(Vocabulary.from_texts(texts)) == 2 + 5
    restored = Vocabulary(vocab.tokens)
    assert restored.encode("dark violin") == vocab.encode("dark violin")
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary([UNK, "a", "a"])
    with pytest.raises(ValueError, match="<unk>"):
        Vocabulary(["a"])


def test_category_vocabulary_uses_the_app_list_plus_data(dataset, caplog):
    from albumcover.prompts import CATEGORIES as APP

    records = read_metadata(split_dir(dataset))
    vocab = category_vocabulary(records)
    assert vocab.tokens[: 1 + len(APP)] == [UNK, *APP]
    odd = [replace(records[0], category="polka-core")]
    with caplog.at_level(logging.WARNING):
        vocab = category_vocabulary(odd)
    assert vocab.tokens[-1] == "polka-core" and "polka-core" in caplog.text
    assert vocab.id("") == vocab.id("never seen") == vocab.unk


def _write_rows(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_text("\n".join(rows) + "\n")


def test_bad_datasets_name_the_file_and_row(tmp_path, dataset):
    with pytest.raises(DatasetError, match="not found"):
        split_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="splits found: none"):
        split_dir(tmp_path / "empty")
    with pytest.raises(DatasetError, match="splits found: train, validation"):
        split_dir(dataset, "test")

    good = json.dumps({"file_name": "a.png", "text": "rock"})
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    cases = {
        "not valid JSON": [good, "{oops"],
        "expected a JSON object": [good, "[1, 2]"],
        "no 'text' field": [good, json.dumps({"file_name": "a.png"})],
        "'file_name' must be a file name": [good, json.dumps({"text": "x", "file_name": 3})],
        "'category' must be a string": [good, json.dumps({"file_name": "a.png", "text": "x",
                                                          "category": 1})],
        "image .*b.png does not exist": [good, json.dumps({"file_name": "b.png", "text": "x"})],
    }  # fmt: skip
    for message, rows in cases.items():
        _write_rows(tmp_path, rows)
        with pytest.raises(DatasetError, match=message) as error:
            read_metadata(tmp_path)
        assert f"{tmp_path / 'metadata.jsonl'} line 2" in str(error.value)
    _write_rows(tmp_path, [""])
    with pytest.raises(DatasetError, match="has no rows"):
        read_metadata(tmp_path)


def test_training_rejects_unreadable_images_and_tiny_datasets(tmp_path):
    data = write_cover_dataset(tmp_path / "d", n_train=4, n_validation=2, size=16)
    (data / "train" / "train-0002.png").write_bytes(b"not a png")
    message = r"metadata.jsonl line 3: cannot read image .*train-0002"
    with pytest.raises(DatasetError, match=message):
        train(data, tmp_path / "o", "none", "--max_train_steps", "1")
    small = write_cover_dataset(tmp_path / "s", n_train=3, n_validation=2, size=16)
    with pytest.raises(DatasetError, match="has 3 images, fewer than one batch of 4"):
        train(small, tmp_path / "o", "none")


def test_empty_category_trains_as_unknown(tmp_path, caplog):
    data = write_cover_dataset(tmp_path / "d", n_train=4, n_validation=2, size=16)
    metadata = data / "train" / "metadata.jsonl"
    rows = [json.loads(line) for line in metadata.read_text().splitlines()]
    rows[0]["category"] = ""
    metadata.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.WARNING):
        train(data, tmp_path / "o", "category", "--max_train_steps", "1")
    assert "1 of 4 covers have no known category" in caplog.text


# --- checkpoints and sampling ---------------------------------------------------------------


def test_checkpoint_paths_and_broken_files(trained, tmp_path):
    out = trained["prompt"]
    assert resolve_checkpoint(out) == resolve_checkpoint(out / "latest") == out / "checkpoint-2.pt"
    with pytest.raises(CheckpointError, match="no 'latest' file"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "latest").write_text("checkpoint-9.pt\n")
    with pytest.raises(CheckpointError, match="missing checkpoint"):
        resolve_checkpoint(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read GAN checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an albumcover GAN checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    assert not list(out.glob(".*.tmp")), "atomic-write temp files left behind"


@pytest.mark.parametrize(
    "condition, request_",
    [("none", {}), ("category", {"category": "jazz"}), ("prompt", {"prompt": "dark synth pop"})],
)
def test_sampling_each_condition(trained, condition, request_, tmp_path):
    sampler = GanSampler.from_checkpoint(trained[condition], device="cpu")
    images = sampler.generate(n=3, seed=7, **request_)
    assert len(images) == 3 and all(i.size == (64, 64) and i.mode == "RGB" for i in images)
    again = sampler.generate(n=3, seed=7, **request_)
    assert all(
        np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again, strict=True)
    )
    other_seed = sampler.generate(n=1, seed=8, **request_)[0]
    assert not np.array_equal(np.asarray(images[0]), np.asarray(other_seed))
    if condition == "category":
        other = sampler.generate(n=1, seed=7, category="rock")[0]
        assert not np.array_equal(np.asarray(images[0]), np.asarray(other))

    args = [
        "--checkpoint",
        str(trained[condition]),
        "--n",
        "2",
        "--out",
        str(tmp_path),
        "--seed",
        "1",
    ]
    for key, value in request_.items():
        args += [f"--{key}", value]
    paths = sample_main(sample_args(args))
    assert [p.name for p in paths] == ["sample-000.png", "sample-001.png"]
    assert Image.open(tmp_path / "grid.png").size == (2 * 66 + 2, 66 + 2)


def test_sampling_rejects_wrong_requests(trained, caplog):
    none = GanSampler.from_checkpoint(trained["none"], device="cpu")
    category = GanSampler.from_checkpoint(trained["category"], device="cpu")
    prompt = GanSampler.from_checkpoint(trained["prompt"], device="cpu")
    with pytest.raises(SampleError, match="unconditional"):
        none.generate(prompt="rock")
    with pytest.raises(SampleError, match="unconditional"):
        none.generate(category="rock")
    with pytest.raises(SampleError, match="give a prompt"):
        prompt.generate(category="rock")
    with pytest.raises(SampleError, match="give a category, one of"):
        category.generate()
    with pytest.raises(SampleError, match="unknown category 'polka'; this GAN knows: rock, pop"):
        category.generate(category="polka")
    with pytest.raises(SampleError, match="not both"):
        category.generate(category="rock", prompt="rock")
    with pytest.raises(SampleError, match="n must be"):
        none.generate(n=0)
    assert len(category.generate(category="polka", unknown_category=True)) == 1
    with caplog.at_level(logging.WARNING):
        prompt.generate(prompt="zzz qqq")
    assert "no word of prompt" in caplog.text


def test_sample_flags(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sample_args(["--checkpoint", "c", "--out", "o", "--n", "0"])
    with pytest.raises(SystemExit):
        sample_args(["--checkpoint", "c", "--out", "o", "--prompt", "a", "--category", "b"])
    assert "not both" in capsys.readouterr().err


def test_command_lines_report_errors_cleanly(trained, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "train.gan.sample", "--checkpoint", str(trained["category"]),
         "--category", "polka", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown category 'polka'")
    result = subprocess.run(
        [sys.executable, "-m", "train.gan", "--condition", "none", "--train_data_dir",
         str(tmp_path / "nothing"), "--output_dir", str(tmp_path / "o")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env=ENV,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"error: dataset folder not found: {tmp_path / 'nothing'}"
    )


# --- reruns and output folders -------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) -> its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def run_module(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=ENV,
    )  # fmt: skip


def test_a_second_run_into_the_same_folder_refuses_and_keeps_every_byte(dataset, tmp_path):
    out = tmp_path / "run"
    train(dataset, out, "none", "--max_train_steps", "2", "--checkpointing_steps", "1")
    before = snapshot(out)
    assert {"checkpoint-1.pt", "checkpoint-2.pt", "latest"} <= before.keys()
    with pytest.raises(RunExistsError, match="already holds another run"):
        train(dataset, out, "none", "--max_train_steps", "1")
    # a checkpoint of another folder does not continue this run either
    other = train(dataset, tmp_path / "other", "none", "--max_train_steps", "1")
    with pytest.raises(RunExistsError, match="from another folder"):
        train(
            dataset, out, "none", "--max_train_steps", "2", "--resume_from_checkpoint", str(other)
        )
    # the command line says so in one line, before the dataset (let alone a model) is read
    result = run_module("train.gan", "--condition", "none", "--train_data_dir",
                        str(tmp_path / "no-data"), "--output_dir", str(out))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --output_dir {out} already holds another run (checkpoint-1.pt, checkpoint-2.pt, "
        "latest): continue it with --resume_from_checkpoint latest, replace it with "
        "--overwrite_output_dir, or choose another --output_dir"
    )
    assert snapshot(out) == before

    # resuming it still works, and continues it
    path = train(
        dataset, out, "none", "--max_train_steps", "3", "--resume_from_checkpoint", "latest"
    )
    assert path == out / "checkpoint-3.pt" and load_checkpoint(out)["step"] == 3
    assert all(
        snapshot(out)[name] == before[name] for name in ("checkpoint-1.pt", "checkpoint-2.pt")
    )


def test_overwrite_output_dir_replaces_the_earlier_run(dataset, tmp_path, caplog):
    out = tmp_path / "run"
    train(dataset, out, "none", "--max_train_steps", "2", "--checkpointing_steps", "1")
    (out / "notes.txt").write_text("mine")
    with caplog.at_level(logging.WARNING):
        train(dataset, out, "category", "--max_train_steps", "1", "--overwrite_output_dir")
    assert "--overwrite_output_dir" in caplog.text and "checkpoint-2.pt" in caplog.text
    # the old run's checkpoints are gone, so `latest` can only ever resume the new run
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1.pt"]
    assert load_checkpoint(out)["config"]["condition"] == "category"
    assert (out / "notes.txt").read_text() == "mine"  # not a file of the run: left alone


def test_unwritable_output_folders_fail_in_one_line_before_anything_loads(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    # training: the output error comes before the (missing) dataset is even looked at
    result = run_module("train.gan", "--condition", "none", "--train_data_dir",
                        str(tmp_path / "none"), "--output_dir", str(blocker / "out"))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --output_dir '{blocker / 'out'}' cannot be created: Not a directory"
    ]
    # sampling: --out is checked before the (missing) checkpoint loads
    result = run_module("train.gan.sample", "--checkpoint", str(tmp_path / "no.pt"),
                        "--out", str(blocker))  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: --out '{blocker}' is a file, not a folder"
    ]
    assert blocker.read_text() == "not a folder"


def test_gan_sd_training_and_evaluation_read_and_crop_a_cover_alike(tmp_path):
    import random

    from train import evaluate
    from train.gan.data import load_images
    from train.imagefolder import prepare_image

    # a landscape cover, red left half and blue right half; "a" is stored with EXIF
    # orientation 6 (shown rotated by 90 degrees), so upright its halves are top and bottom
    pixels = np.zeros((24, 40, 3), np.uint8)
    pixels[:, :20] = (250, 10, 10)
    pixels[:, 20:] = (10, 10, 250)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "a.png", exif=exif)
    Image.fromarray(pixels).save(tmp_path / "b.png")
    rows = [{"file_name": n, "text": "rock", "category": "rock"} for n in ("a.png", "b.png")]
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_metadata(tmp_path)

    gan = load_images(records, 16).permute(0, 2, 3, 1).numpy()  # GAN training
    covers = [np.asarray(c) for c in evaluate._load_covers(records)]  # evaluation's real covers
    for i, record in enumerate(records):
        sd = prepare_image(  # SD training, centre crop
            evaluate.open_rgb(record.image, record.where), 16, random.Random(0), True, False
        )
        sd = ((sd + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8)
        assert np.array_equal(gan[i], sd), record.image.name
        assert covers[i].shape == (24, 24, 3)  # the centre square at the cover's own size
    for image in (gan[0], covers[0]):  # upright: halves top and bottom, the same across
        assert image[0, 0, 0] != image[-1, 0, 0] and image[0, 0, 0] == image[0, -1, 0]
    for image in (gan[1], covers[1]):  # as stored: halves left and right
        assert image[0, 0, 0] != image[0, -1, 0] and image[0, 0, 0] == image[-1, 0, 0]
