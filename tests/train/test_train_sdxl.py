"""Fine-tuning a tiny random SDXL (two text encoders, ``text_time`` conditioning): full, LoRA
(UNet + both text encoders) and DreamBooth with prior preservation train two steps, resume
exactly, and load in the app's CoverGenerator and in plain diffusers; validation is painted
through CoverGenerator; the size/crop conditioning.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.tiny_models import save_tiny_sdxl
from tests.train_data import (  # noqa: F401  (fresh_accelerate_state: an autouse fixture)
    PROMPT,
    fresh_accelerate_state,
    render,
    write_dataset,
    write_images,
)
from train import train_dreambooth, train_text_to_image
from train.finetune.checkpoints import list_checkpoints
from train.finetune.export import OUTPUT_INFO
from train.finetune.family import SDXL, detect_family, native_resolution

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return save_tiny_sdxl(tmp_path_factory.mktemp("base") / "tiny-sdxl")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("covers"))


def t2i(base, out, data, *extra):
    return train_text_to_image.main(train_text_to_image.parse_args([
        "--pretrained_model_name_or_path", str(base), "--output_dir", str(out),
        "--train_data_dir", str(data), "--resolution", "32", "--train_batch_size", "2",
        "--seed", "7", "--max_train_steps", "2", *extra,
    ]))  # fmt: skip


def test_the_family_and_native_size_come_from_the_base_model(base, tmp_path):
    from train.finetune.family import TrainingError

    assert detect_family(base) == SDXL and native_resolution(base) == 64  # 1024 for SDXL 1.0
    index = json.loads((base / "model_index.json").read_text())
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "model_index.json").write_text(json.dumps(index | {"_class_name": "FluxPipeline"}))
    with pytest.raises(TrainingError, match="FluxPipeline pipeline; this trainer fine-tunes"):
        detect_family(fake)


def test_full_fine_tune_loads_in_the_app_and_in_diffusers(base, dataset, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from albumcover.paint.generator import CoverGenerator

    out = tmp_path / "full"
    # no --resolution: the base model's own (64 px here, 1024 for SDXL 1.0)
    result = train_text_to_image.main(train_text_to_image.parse_args([
        "--pretrained_model_name_or_path", str(base), "--output_dir", str(out),
        "--train_data_dir", str(dataset), "--train_batch_size", "1", "--seed", "7",
        "--max_train_steps", "2", "--learning_rate", "1e-3", "--train_text_encoder",
        "--gradient_checkpointing", "--pretrained_vae_model_name_or_path", str(base / "vae"),
    ]))  # fmt: skip
    assert result.global_step == 2
    info = json.loads((out / OUTPUT_INFO).read_text())
    assert info | {"kind": "full", "family": "sdxl", "resolution": 64} == info
    name = "diffusion_pytorch_model.safetensors"
    before, after = load_file(base / "unet" / name), load_file(out / "unet" / name)
    assert any(not torch.equal(before[k], after[k]) for k in before), "the UNet did not train"
    name = "model.safetensors"
    for encoder in ("text_encoder", "text_encoder_2"):
        before, after = load_file(base / encoder / name), load_file(out / encoder / name)
        assert any(not torch.equal(before[k], after[k]) for k in before), f"{encoder} is frozen"
    card = (out / "README.md").read_text()
    assert "license: openrail++" in card and "- stable-diffusion-xl" in card
    assert f'StableDiffusionXLPipeline.from_pretrained("{out}")' in card

    pipe = StableDiffusionXLPipeline.from_pretrained(out)  # plain diffusers
    assert pipe.text_encoder_2 is not None
    render(CoverGenerator.from_pretrained(out, device="cpu"))


def test_lora_on_unet_and_both_text_encoders_with_validation_like_the_app(base, dataset, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from albumcover.paint.generator import CoverGenerator
    from train.finetune.validation import paint

    out = tmp_path / "lora"
    t2i(base, out, dataset, "--use_lora", "--rank", "2", "--train_text_encoder",
        "--learning_rate", "1e-3", "--validation_prompt", PROMPT, "--validation_steps", "1",
        "--num_validation_images", "2", "--validation_inference_steps", "2")  # fmt: skip
    weights = load_file(out / "pytorch_lora_weights.safetensors")
    for part in ("unet.", "text_encoder.", "text_encoder_2."):
        assert any(k.startswith(part) for k in weights), part
    ups = [v for k, v in weights.items() if "lora_B" in k or "lora.up" in k]
    assert any(v.abs().sum() > 0 for v in ups), "LoRA B starts at zero and must train"
    assert not (out / "model_index.json").exists()

    # one grid per validation step, in the card; step 1 from the training weights, step 2 from
    # the saved output
    for step in (1, 2):
        assert (out / "validation" / f"step-{step}" / "grid.png").is_file()
    card = (out / "README.md").read_text()
    assert "![step 1](validation/step-1/grid.png)" in card and "negative prompt" in card
    assert f'pipe.load_lora_weights("{out}")' in card

    # the final images are exactly what the app's generator paints from the output (in float32,
    # the training's dtype, not bf16 where the CPU has it)
    app = CoverGenerator.from_pretrained(
        base, lora=out, device="cpu", safety_checker=False, dtype="float32"
    )
    images = paint(app, PROMPT, num_images=2, steps=2, size=32, seed=7)
    for i, image in enumerate(images):
        saved = np.asarray(read_image(out / "validation" / "step-2" / f"{i:02d}.png"))
        np.testing.assert_array_equal(saved, np.asarray(image))
    plain = CoverGenerator.from_pretrained(base, device="cpu", safety_checker=False)
    assert not np.array_equal(np.asarray(render(app)), np.asarray(render(plain)))

    pipe = StableDiffusionXLPipeline.from_pretrained(base)  # plain diffusers, on the base
    pipe.load_lora_weights(out)
    assert set(pipe.get_list_adapters()) == {"unet", "text_encoder", "text_encoder_2"}


def read_image(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def test_dreambooth_with_prior_preservation(base, tmp_path):
    from albumcover.paint.generator import CoverGenerator

    instance, classes = tmp_path / "instance", tmp_path / "class"
    write_images(instance, 2)
    write_images(classes, 1, seed=3)
    out = tmp_path / "db"
    result = train_dreambooth.main(train_dreambooth.parse_args([
        "--pretrained_model_name_or_path", str(base), "--output_dir", str(out),
        "--instance_data_dir", str(instance), "--instance_prompt", "cover album of sks",
        "--with_prior_preservation", "--class_data_dir", str(classes), "--class_prompt",
        "cover album", "--num_class_images", "2", "--class_inference_steps", "2",
        "--resolution", "32", "--use_lora", "--max_train_steps", "2", "--train_batch_size", "1",
        "--seed", "7",
    ]))  # fmt: skip
    assert result.global_step == 2
    assert len(list(classes.glob("*.png"))) == 2 and not list(classes.glob(".*"))
    card = (out / "README.md").read_text()
    assert "- dreambooth" in card and "prior preservation" in card
    render(CoverGenerator.from_pretrained(base, lora=out, device="cpu"), "cover album of sks")


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_resume_is_exact(base, dataset, tmp_path, mode):
    # batch 1 over 4 images: resuming at step 1 skips a quarter of the epoch
    common = ["--train_batch_size", "1", "--learning_rate", "1e-2", "--random_flip",
              "--checkpointing_steps", "1"]  # fmt: skip
    common += ["--use_lora", "--rank", "2", "--train_text_encoder"] if mode == "lora" else []
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    t2i(base, straight, dataset, *common)
    t2i(base, resumed, dataset, *common, "--max_train_steps", "1")
    result = t2i(base, resumed, dataset, *common, "--resume_from_checkpoint", "latest")
    assert (result.resumed_step, result.global_step) == (1, 2)
    assert [s for s, _ in list_checkpoints(resumed)] == [1, 2]

    a, b = straight / "checkpoint-2", resumed / "checkpoint-2"
    files = ["unet_lora", "text_encoder_lora", "text_encoder_2_lora"] if mode == "lora" else []
    files = [f"{name}.safetensors" for name in files] or [p.name for p in a.glob("model*")]
    assert files
    for name in files:
        x, y = load_file(a / name), load_file(b / name)
        assert x.keys() == y.keys()
        for key in x:
            torch.testing.assert_close(x[key], y[key])
    x = torch.load(a / "optimizer.bin", weights_only=True)["state"]
    y = torch.load(b / "optimizer.bin", weights_only=True)["state"]
    assert x.keys() == y.keys()
    for i in x:
        torch.testing.assert_close(x[i]["exp_avg"], y[i]["exp_avg"])
        torch.testing.assert_close(x[i]["exp_avg_sq"], y[i]["exp_avg_sq"])


def test_size_and_crop_conditioning(base, dataset):
    from tests.tiny_models import tiny_tokenizer
    from train.finetune.models import time_ids
    from train.imagefolder import CoverDataset, collate, read_metadata

    examples = read_metadata(dataset)  # covers of 36 x 36 and 48 x 40 (width x height) px
    data = CoverDataset(examples, [tiny_tokenizer(), tiny_tokenizer()], 32, seed=3)
    items = [data[i] for i in range(4)]
    assert [tuple(x["original_size"].tolist()) for x in items] == [(36, 36), (40, 48)] * 2
    for item in items:
        assert item["input_ids"].shape == item["input_ids_2"].shape == (77,)
    # the 48 x 40 cover resizes to 38 x 32: a random crop starts at left 0..6, top 0
    top, left = items[1]["crop_top_left"].tolist()
    assert top == 0 and 0 <= left <= 6
    ids = time_ids(collate(items[:2]), 32)
    assert ids.tolist() == [[36, 36, 0, 0, 32, 32], [40, 48, 0, left, 32, 32]]
    centre = CoverDataset(examples, [tiny_tokenizer()], 32, center_crop=True)[1]
    assert centre["crop_top_left"].tolist() == [0, 3]
