"""Model families through the real loaders: tiny random SD 1.x and SDXL pipelines loaded from a
folder and from one single-file checkpoint, their defaults and token budgets, the fp16 SDXL VAE,
and the few-step fast path (a tiny random LoRA + LCMScheduler), on its own and on top of a
user's LoRA."""

import json

import numpy as np
import pytest
import torch

from albumcover.paint.checkpoints import pipeline_class_name
from albumcover.paint.families import (
    FAMILIES,
    budget_from_tokenizers,
    family_of_class,
    load_budget,
)
from albumcover.paint.generator import (
    CoverGenerator,
    FastPath,
    GenerationSettings,
    GeneratorError,
)
from tests.single_file import save_single_file
from tests.tiny_models import (
    IMAGE_SIZE,
    save_tiny_lora,
    save_tiny_sd,
    save_tiny_sdxl,
    save_tiny_taesd,
    tiny_tokenizer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "cover album of rock song, by Someone"


def tiny(seed=0, **kw) -> GenerationSettings:
    return GenerationSettings(steps=2, width=IMAGE_SIZE, height=IMAGE_SIZE, seed=seed, **kw)


def pixels(generator, settings=None, prompt=PROMPT) -> np.ndarray:
    cover = generator.generate(prompt, settings or tiny())[0]
    return np.asarray(cover.image, dtype=np.int16)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    sd, sdxl = save_tiny_sd(root / "sd"), save_tiny_sdxl(root / "sdxl")
    return {
        "sd": sd,
        "sdxl": sdxl,
        "sd_file": save_single_file(sd, root / "files" / "sd.safetensors"),
        "sdxl_file": save_single_file(sdxl, root / "files" / "sdxl.safetensors"),
        "sd_lora": save_tiny_lora(sd, root / "sd_lora"),
        "sd_lora_2": save_tiny_lora(sd, root / "sd_lora_2", seed_offset=2),
        "sdxl_lora": save_tiny_lora(sdxl, root / "sdxl_lora"),
    }


@pytest.fixture(scope="module")
def loaded(models):
    return {
        name: CoverGenerator.from_pretrained(models[name], device="cpu") for name in ("sd", "sdxl")
    }


@pytest.mark.parametrize(
    "name, family, size, pipeline",
    [
        ("sd", "sd1", 512, "StableDiffusionPipeline"),
        ("sdxl", "sdxl", 1024, "StableDiffusionXLPipeline"),
    ],
)
def test_folder_loads_with_its_family_defaults(loaded, name, family, size, pipeline):
    generator = loaded[name]
    assert type(generator.pipeline).__name__ == pipeline
    assert generator.family is FAMILIES[family]
    defaults = generator.default_settings()
    assert (defaults.width, defaults.height, defaults.steps) == (size, size, 25)
    assert defaults.guidance_scale == FAMILIES[family].guidance
    assert type(generator.pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert generator.default_settings(width=64).width == 64  # overrides win
    image = generator.generate(PROMPT, tiny())[0].image
    assert image.size == (IMAGE_SIZE, IMAGE_SIZE)


@pytest.mark.parametrize("name", ["sd", "sdxl"])
def test_single_file_paints_like_the_folder(models, loaded, name):
    single = CoverGenerator.from_pretrained(
        models[f"{name}_file"], device="cpu", config=str(models[name]), local_files_only=True
    )
    assert type(single.pipeline) is type(loaded[name].pipeline)
    assert single.family is loaded[name].family
    # the same weights: the same cover, up to float rounding in the converted layout
    assert np.abs(pixels(single) - pixels(loaded[name])).max() <= 2


def test_single_file_class_is_inferred_from_its_keys(models, tmp_path):
    assert pipeline_class_name(models["sd_file"]) == "StableDiffusionPipeline"
    assert pipeline_class_name(models["sdxl_file"]) == "StableDiffusionXLPipeline"
    assert pipeline_class_name(models["sd_file"], config=str(models["sdxl"])) == (
        "StableDiffusionXLPipeline"  # an explicit config wins
    )
    legacy = tmp_path / "model.ckpt"
    legacy.write_bytes(b"not unpickled")
    with pytest.raises(ValueError, match="--config"):
        pipeline_class_name(legacy)
    with pytest.raises(ValueError, match="no model_index.json"):
        pipeline_class_name(models["sd_file"], config=str(tmp_path))


def test_single_file_errors_name_the_file(models, tmp_path):
    with pytest.raises(GeneratorError, match="does not exist"):
        CoverGenerator.from_pretrained(tmp_path / "missing.safetensors", device="cpu")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(GeneratorError, match="junk.safetensors"):
        CoverGenerator.from_pretrained(junk, device="cpu", local_files_only=True)
    with pytest.raises(GeneratorError, match="sd.safetensors"):  # an SD file read as SDXL
        CoverGenerator.from_pretrained(
            models["sd_file"], device="cpu", config=str(models["sdxl"]), local_files_only=True
        )


def test_family_table():
    assert family_of_class("StableDiffusionXLPipeline").name == "sdxl"
    assert family_of_class("StableDiffusionXLPAGPipeline").name == "sdxl"
    assert family_of_class("StableDiffusionPipeline", 768).name == "sd1"
    assert family_of_class("StableDiffusionPipeline", 1024).name == "sd2"
    assert family_of_class("StableDiffusion3Pipeline").text_tokens == 256
    assert family_of_class("FluxPipeline").scheduler is None  # flow matching keeps its own
    assert family_of_class("KandinskyV22Pipeline").name == "other"
    for family in FAMILIES.values():
        assert family.size <= family.max_size and family.size % 8 == 0
        GenerationSettings(steps=family.steps, guidance_scale=family.guidance).validate()


# --- token budgets -------------------------------------------------------------------------


def test_sd_budget_is_its_one_clip_tokenizer(loaded, models):
    budget = loaded["sd"].budget
    assert budget.tokenizers == ("tokenizer",) and budget.max_tokens == 77
    tok = loaded["sd"].pipeline.tokenizer
    text = "cover album of a song, " * 15
    assert loaded["sd"].count_tokens(text) == len(tok(text, truncation=False).input_ids) > 77
    assert load_budget(models["sd"]).tokenizers == ("tokenizer",)


def test_sdxl_budget_counts_both_tokenizers(loaded, models):
    generator = loaded["sdxl"]
    assert generator.budget.tokenizers == ("tokenizer", "tokenizer_2")
    assert generator.max_tokens == 77
    from_folder = load_budget(models["sdxl"])
    assert from_folder.tokenizers == ("tokenizer", "tokenizer_2")
    assert from_folder.count(PROMPT) == generator.count_tokens(PROMPT)


def test_the_binding_tokenizer_is_the_one_that_counts_more(tmp_path):
    from transformers import CLIPTokenizer

    from tests.tiny_models import _write_tokenizer_files

    words = tiny_tokenizer()  # "cover" and "album" are one token each
    _write_tokenizer_files(tmp_path)
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per byte
    bytes_only = CLIPTokenizer.from_pretrained(tmp_path, model_max_length=77)
    budget = budget_from_tokenizers({"tokenizer": words, "tokenizer_2": bytes_only})
    text = "cover album"
    assert len(words(text).input_ids) == 4 < len(bytes_only(text).input_ids)
    assert budget.count(text) == len(bytes_only(text).input_ids)


def test_a_t5_family_is_budgeted_by_its_long_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "</s>": 1, "cover": 2, "album": 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    t5 = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", eos_token="</s>", model_max_length=512
    )
    budget = budget_from_tokenizers({"tokenizer": tiny_tokenizer(), "tokenizer_2": t5}, 256)
    assert budget.tokenizers == ("tokenizer_2",) and budget.max_tokens == 256
    long = "cover album " * 60  # 120 words: over CLIP's 77, inside T5's 256
    assert budget.count(long) == len(t5(long).input_ids) <= 256
    assert budget_from_tokenizers({"tokenizer_2": t5}).max_tokens == 512
    with pytest.raises(ValueError, match="no tokenizer"):
        budget_from_tokenizers({"tokenizer": None})


@pytest.mark.parametrize("name", ["sd", "sdxl"])
def test_prompt_and_negative_prompt_are_fitted_and_the_cut_is_reported(loaded, name):
    generator = loaded[name]
    long = ", ".join(f"tag{i}" for i in range(80))
    settings = tiny(negative_prompt=long)
    cover = generator.generate(long, settings)[0]
    assert cover.prompt_cut and cover.negative_cut
    kept = long[: len(long) - len(cover.prompt_cut)].rstrip(" ,")
    assert generator.count_tokens(kept) <= generator.max_tokens
    assert long.endswith(cover.prompt_cut)
    # what the model read is exactly the kept part: painting that alone gives the same cover
    again = generator.generate(kept, tiny(negative_prompt=kept))[0]
    assert not again.prompt_cut and not again.negative_cut
    assert np.array_equal(np.asarray(again.image), np.asarray(cover.image))


# --- fp16 VAE, GPU time --------------------------------------------------------------------


def test_sdxl_in_float16_decodes_its_vae_in_float32(models, tmp_path):
    import torch

    config = models["sdxl"] / "vae" / "config.json"
    lost = tmp_path / "sdxl"
    import shutil

    shutil.copytree(models["sdxl"], lost)
    data = json.loads(config.read_text())
    data["force_upcast"] = False  # as some re-saved SDXL checkpoints have it
    (lost / "vae" / "config.json").write_text(json.dumps(data))
    generator = CoverGenerator.from_pretrained(lost, device="cpu", dtype=torch.float16)
    assert generator.pipeline.vae.config.force_upcast is True
    # an explicit VAE (e.g. the fp16-fix one) replaces the checkpoint's
    swapped = CoverGenerator.from_pretrained(
        models["sdxl"], device="cpu", vae=models["sd"] / "vae", local_files_only=True
    )
    assert swapped.pipeline.vae.config.scaling_factor == 0.18215  # the SD 1.x VAE's
    with pytest.raises(GeneratorError, match="cannot load VAE"):
        CoverGenerator.from_pretrained(models["sdxl"], device="cpu", vae=tmp_path / "none")


# --- fast path -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sd", "sdxl"])
def test_fast_path_lcm_lora_and_scheduler(models, loaded, name):
    fast = CoverGenerator.from_pretrained(
        models[name], device="cpu", fast=FastPath(lora=str(models[f"{name}_lora"]))
    )
    assert type(fast.pipeline.scheduler).__name__ == "LCMScheduler"
    defaults = fast.default_settings(width=IMAGE_SIZE, height=IMAGE_SIZE, seed=0)
    assert (defaults.steps, defaults.guidance_scale) == (4, 1.0)
    steps = []
    cover = fast.generate(PROMPT, defaults, progress=lambda step, total: steps.append(total))
    assert steps == [4] * 4  # four evaluations, no guidance pass
    assert cover[0].image.size == (IMAGE_SIZE, IMAGE_SIZE)
    # the LoRA is fused into the weights: they differ from the plain model's
    plain = loaded[name].pipeline.unet.state_dict()
    fused = fast.pipeline.unet.state_dict()
    assert any(not torch.equal(plain[k], fused[k]) for k in plain)
    assert not any("lora" in k for k in fused)


def test_fast_path_on_top_of_a_fine_tune(models):
    def unet_weights(generator):
        return {k: v.clone() for k, v in generator.pipeline.unet.state_dict().items()}

    lcm = FastPath(lora=str(models["sd_lora"]))
    fast = CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=lcm)
    both = CoverGenerator.from_pretrained(
        models["sd"], device="cpu", lora=models["sd_lora_2"], fast=lcm
    )
    a, b = unet_weights(fast), unet_weights(both)
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the user's counts
    settings = fast.default_settings(width=IMAGE_SIZE, height=IMAGE_SIZE, seed=3)
    assert not np.array_equal(pixels(fast, settings), pixels(both, settings))


def test_fast_path_for_a_distilled_checkpoint_and_missing_lcm_lora(models, tmp_path):
    distilled = CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=FastPath(lora=""))
    assert type(distilled.pipeline.scheduler).__name__ == "LCMScheduler"
    assert distilled.fast.steps == 4
    with pytest.raises(GeneratorError, match="no few-step LoRA is known for Stable Diffusion 2"):
        FastPath().resolve(FAMILIES["sd2"], "some/sd2-model")
    assert FastPath().resolve(FAMILIES["sdxl"], "x").lora == "latent-consistency/lcm-lora-sdxl"
    with pytest.raises(GeneratorError, match="cannot load LoRA"):
        CoverGenerator.from_pretrained(
            models["sd"], device="cpu", fast=FastPath(lora=str(tmp_path / "nothing"))
        )
    with pytest.raises(ValueError, match="steps"):
        FastPath(steps=0)


@pytest.mark.parametrize("name", ["sd", "sdxl"])
def test_fast_path_with_a_tiny_autoencoder(models, name, tmp_path):
    taesd = save_tiny_taesd(tmp_path / "taesd")
    fast = FastPath(lora=str(models[f"{name}_lora"]), vae=str(taesd))
    generator = CoverGenerator.from_pretrained(models[name], device="cpu", fast=fast)
    assert type(generator.pipeline.vae).__name__ == "AutoencoderTiny"
    settings = generator.default_settings(width=IMAGE_SIZE, height=IMAGE_SIZE, seed=0)
    assert generator.generate(PROMPT, settings)[0].image.size == (IMAGE_SIZE, IMAGE_SIZE)
    assert FastPath.from_option("none", str(taesd)) == FastPath(lora="", vae=str(taesd))
    with pytest.raises(GeneratorError, match="tiny VAE"):
        CoverGenerator.from_pretrained(
            models[name], device="cpu", fast=FastPath(lora="", vae=str(tmp_path / "none"))
        )
