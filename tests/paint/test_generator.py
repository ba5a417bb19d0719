import subprocess
import sys

import numpy as np
import pytest

from albumcover.paint.generator import (
    MAX_SEED,
    Cover,
    CoverGenerator,
    GenerationSettings,
    GeneratorError,
)
from albumcover.prompts import CLIP_MAX_TOKENS, SongInfo, build_prompt
from tests.tiny_models import save_tiny_lora, save_tiny_sd

PROMPT = "cover album of rock song, titled Test, by Someone"


def tiny(seed=0, **kw) -> GenerationSettings:
    return GenerationSettings(steps=2, width=64, height=64, seed=seed, **kw)


def pixels(cover: Cover) -> np.ndarray:
    return np.asarray(cover.image, dtype=np.int16)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    checked = save_tiny_sd(root / "checked", safety_checker=True)
    return {
        "checked": checked,
        "plain": save_tiny_sd(root / "plain"),
        "lora": save_tiny_lora(checked, root / "lora"),
    }


@pytest.fixture(scope="module")
def generator(folders):
    return CoverGenerator.from_pretrained(folders["checked"], device="cpu")


def test_import_is_cheap():
    code = (
        "import sys, albumcover.paint.generator; print({'torch', 'diffusers'} & set(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "set()"


def test_loads_on_cpu_in_its_default_dtype_with_dpm_solver(generator, folders):
    import torch

    from albumcover.paint.dtypes import bf16_native

    pipe = generator.pipeline
    native = bf16_native(torch.device("cpu"))
    expected = torch.bfloat16 if native else torch.float32
    assert generator.device.type == "cpu" and generator.dtype == expected
    assert pipe.unet.dtype == pipe.text_encoder.dtype == pipe.vae.dtype == expected
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert pipe.scheduler.config.algorithm_type == "dpmsolver++"
    assert generator.model_id == str(folders["checked"])


def test_seeds_reproduce_and_differ(generator):
    first = generator.generate(PROMPT, tiny(seed=None))
    assert len(first) == 1 and 0 <= first[0].seed < 2**32
    again = generator.generate(PROMPT, tiny(seed=first[0].seed))
    other = generator.generate(PROMPT, tiny(seed=first[0].seed + 1))
    assert again[0].seed == first[0].seed and other[0].seed == first[0].seed + 1
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert np.abs(pixels(first[0]) - pixels(other[0])).max() > 10
    image = first[0].image
    assert image.size == (64, 64) and image.mode == "RGB" and not first[0].nsfw


def test_four_variations_are_the_single_covers_of_their_seeds(generator):
    steps = []
    covers = generator.generate(
        PROMPT, tiny(seed=1000, num_images=4), progress=lambda *a: steps.append(a)
    )
    assert [c.seed for c in covers] == [1000, 1001, 1002, 1003]
    assert steps == [(1, 2), (2, 2)]  # one batched call: the steps are not repeated per image
    for k in (0, 3):
        alone = generator.generate(PROMPT, tiny(seed=1000 + k))[0]
        # batched and single matmuls may round differently; a different seed differs by far more
        assert np.abs(pixels(covers[k]) - pixels(alone)).max() <= 2
    assert np.abs(pixels(covers[0]) - pixels(covers[1])).max() > 10


def test_count_tokens_uses_the_pipeline_tokenizer(generator):
    tok = generator.pipeline.tokenizer
    assert generator.count_tokens("cover album") == 4  # start, two whole words, end
    long = "rhapsody " * 40
    assert generator.count_tokens(long) == len(tok(long, truncation=False).input_ids) > 77
    song = SongInfo(title="x" * 500, artist="Someone", category="rock")
    prompt = build_prompt(song, ["rock", "guitar"], count_tokens=generator.count_tokens)
    assert generator.count_tokens(prompt) <= CLIP_MAX_TOKENS


def test_lora_changes_the_covers(folders, generator):
    with_lora = CoverGenerator.from_pretrained(folders["checked"], lora=folders["lora"])
    base = generator.generate(PROMPT, tiny(seed=7))[0]
    tuned = with_lora.generate(PROMPT, tiny(seed=7))[0]
    assert np.abs(pixels(base) - pixels(tuned)).max() > 10


def test_bad_lora_is_a_generator_error(folders, tmp_path):
    with pytest.raises(GeneratorError, match="LoRA") as err:
        CoverGenerator.from_pretrained(folders["plain"], lora=tmp_path / "no-lora")
    assert str(tmp_path / "no-lora") in str(err.value) and err.value.__cause__ is not None


def test_safety_checker_kept_when_present_and_removable(folders, generator):
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

    assert isinstance(generator.pipeline.safety_checker, StableDiffusionSafetyChecker)
    assert generator.has_safety_checker
    removed = CoverGenerator.from_pretrained(folders["checked"], safety_checker=False)
    assert removed.pipeline.safety_checker is None and not removed.has_safety_checker
    plain = CoverGenerator.from_pretrained(folders["plain"])
    assert not plain.has_safety_checker
    assert plain.generate(PROMPT, tiny())[0].image.size == (64, 64)


def test_blanked_covers_are_flagged(folders):
    import torch

    strict = CoverGenerator.from_pretrained(folders["checked"])
    with torch.no_grad():  # every concept's threshold below any similarity: all flagged
        strict.pipeline.safety_checker.concept_embeds_weights.fill_(-10.0)
    covers = strict.generate(PROMPT, tiny(num_images=2))
    assert [c.nsfw for c in covers] == [True, True]
    assert all(pixels(c).max() == 0 for c in covers)


def test_missing_model_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(GeneratorError, match="ALBUMCOVER_MODEL") as err:
        CoverGenerator.from_pretrained(missing)
    assert str(missing) in str(err.value)
    with pytest.raises(GeneratorError, match="model_index.json"):
        CoverGenerator.from_pretrained(tmp_path)  # a folder, but not a pipeline


@pytest.mark.parametrize("model", ["", "   ", None])
def test_no_model_given(model):
    with pytest.raises(GeneratorError, match="ALBUMCOVER_MODEL"):
        CoverGenerator.from_pretrained(model)


def test_unknown_device(folders):
    with pytest.raises(GeneratorError, match="'banana'"):
        CoverGenerator.from_pretrained(folders["plain"], device="banana")


def test_broken_model_folder(folders, tmp_path):
    import shutil

    broken = shutil.copytree(folders["plain"], tmp_path / "broken")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    with pytest.raises(GeneratorError, match="ALBUMCOVER_MODEL") as err:
        CoverGenerator.from_pretrained(broken)
    assert str(broken) in str(err.value) and err.value.__cause__ is not None


def test_unknown_hub_id_offline():
    with pytest.raises(GeneratorError, match="nobody-here/no-such-model") as err:
        CoverGenerator.from_pretrained("nobody-here/no-such-model", local_files_only=True)
    assert err.value.__cause__ is not None


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("steps", 151),
        ("steps", 2.5),
        ("steps", True),
        ("guidance_scale", -1.0),
        ("guidance_scale", float("nan")),
        ("guidance_scale", float("inf")),
        ("guidance_scale", "7.5"),
        ("seed", -1),
        ("seed", MAX_SEED + 1),  # past 32 bits: not a seed the app could show or take back
        ("seed", 1.5),
        ("num_images", 0),
        ("num_images", 5),
        ("width", 32),
        ("width", 100),
        ("height", 4096),
        ("height", "512"),
        ("negative_prompt", None),
    ],
)
def test_invalid_settings(field, value, generator):
    settings = tiny(num_images=4)
    setattr(settings, field, value)
    with pytest.raises(ValueError, match=field):
        settings.validate()
    with pytest.raises(ValueError, match=field):
        generator.generate(PROMPT, settings)


@pytest.mark.parametrize("prompt", ["", "   \n\t", None, 42])
def test_empty_prompt(prompt, generator):
    with pytest.raises(ValueError, match="prompt"):
        generator.generate(prompt, tiny())


def test_defaults_are_valid():
    settings = GenerationSettings().validate()
    assert (settings.width, settings.height, settings.num_images) == (512, 512, 1)
    assert settings.negative_prompt
