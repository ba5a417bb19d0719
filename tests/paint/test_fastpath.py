"""The one- and two-step paths through a tiny random LoRA and the real schedulers (TCD at one
step, DDIM "trailing" at two, LCM at four), the family table that picks them by step count, and
the fallback to the model's own sampler when the LoRA or the tiny decoder cannot be loaded."""

import functools

import numpy as np
import pytest

from albumcover.paint.defaults import (
    CPU_FAST_STEPS,
    CPU_FAST_VAE,
    CPU_MODEL,
    GPU_MODEL,
    GPU_VAE,
    paint_defaults,
)
from albumcover.paint.families import FAMILIES, HYPER_SD, LCM, TCD, TRAILING
from albumcover.paint.generator import CoverGenerator, FastPath, GeneratorError
from tests.tiny_models import (
    IMAGE_SIZE,
    save_tiny_lora,
    save_tiny_sd,
    save_tiny_sdxl,
    save_tiny_taesd,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "cover album of rock song, by Someone"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("fastpath")
    sd, sdxl = save_tiny_sd(root / "sd"), save_tiny_sdxl(root / "sdxl")
    return {
        "sd": sd,
        "sdxl": sdxl,
        "sd_lora": save_tiny_lora(sd, root / "sd_lora"),
        "sdxl_lora": save_tiny_lora(sdxl, root / "sdxl_lora"),
        "taesd": save_tiny_taesd(root / "taesd"),
    }


@pytest.mark.parametrize("family, prefix", [("sd1", "Hyper-SD15"), ("sdxl", "Hyper-SDXL")])
def test_the_family_table_picks_the_lora_by_steps(family, prefix):
    f = FAMILIES[family]
    one, two, four, eight = (f.few_step_lora(n) for n in (1, 2, 4, 8))
    assert (one.lora, one.weight_name, one.scheduler, one.eta) == (
        HYPER_SD,
        f"{prefix}-1step-lora.safetensors",
        TCD,
        1.0,
    )
    assert (two.weight_name, two.scheduler, two.guidance) == (
        f"{prefix}-2steps-lora.safetensors",
        TRAILING,
        0.0,
    )
    assert four == eight and four.scheduler == LCM and four.lora == f.fast_lora
    assert f.few_step_lora(3) == two  # the most steps not over the asked count
    assert FAMILIES["sd2"].few_step_lora(2) is None


def test_resolve_fills_only_what_was_not_given():
    sd1 = FAMILIES["sd1"]
    default = FastPath(steps=2).resolve(sd1, "m")
    assert (default.lora, default.scheduler, default.guidance) == (HYPER_SD, TRAILING, 0.0)
    local = FastPath(lora="/models/hyper2.safetensors", steps=2).resolve(sd1, "m")
    assert local.lora == "/models/hyper2.safetensors" and local.weight_name is None
    assert local.scheduler == TRAILING  # a local copy of the same LoRA gets its sampler
    forced = FastPath(steps=2, scheduler=LCM, guidance=1.5).resolve(sd1, "m")
    assert (forced.scheduler, forced.guidance, forced.eta) == (LCM, 1.5, None)
    distilled = FastPath.from_option("none", steps=1).resolve(FAMILIES["sd2"], "m")
    assert distilled.lora == "" and distilled.scheduler == LCM  # no recipe: LCM, guidance 1
    with pytest.raises(ValueError, match="scheduler"):
        FastPath(scheduler="euler")


@pytest.mark.parametrize("name", ["sd", "sdxl"])
def test_one_step_tcd_and_two_step_trailing_ddim(models, name):
    covers = {}
    for steps, scheduler, timesteps in (
        (1, "TCDScheduler", [999]),
        (2, "DDIMScheduler", [999, 499]),
    ):
        fast = FastPath(lora=str(models[f"{name}_lora"]), steps=steps)
        generator = CoverGenerator.from_pretrained(models[name], device="cpu", fast=fast)
        pipe = generator.pipeline
        assert type(pipe.scheduler).__name__ == scheduler
        settings = generator.default_settings(width=IMAGE_SIZE, height=IMAGE_SIZE, seed=4)
        assert (settings.steps, settings.guidance_scale) == (steps, 0.0)
        calls = []
        cover = generator.generate(
            PROMPT, settings, progress=lambda s, t, calls=calls: calls.append((s, t))
        )
        assert calls == [(k + 1, steps) for k in range(steps)]  # no guidance pass
        # the real scheduler's timesteps: the last (noisiest) one first, as distilled
        assert pipe.scheduler.timesteps.tolist() == timesteps
        assert cover[0].image.size == (IMAGE_SIZE, IMAGE_SIZE)
        covers[steps] = np.asarray(cover[0].image, dtype=np.int16)
    assert generator.fast.scheduler == TRAILING and generator.fast.eta is None
    assert np.abs(covers[1] - covers[2]).max() > 10  # one more step changes the painting


def test_tcd_eta_reaches_the_scheduler(models):
    fast = FastPath(lora=str(models["sd_lora"]), steps=1)
    generator = CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=fast)
    assert generator.fast.eta == 1.0
    seen = []
    step = generator.pipeline.scheduler.step

    @functools.wraps(step)  # the pipeline passes eta only to a step() whose signature takes it
    def spy(*args, **kwargs):
        seen.append(kwargs.get("eta"))
        return step(*args, **kwargs)

    generator.pipeline.scheduler.step = spy
    generator.generate(PROMPT, generator.default_settings(width=IMAGE_SIZE, height=IMAGE_SIZE))
    assert seen == [1.0]


def test_a_missing_lora_falls_back_to_the_models_own_sampler(models, tmp_path):
    missing = str(tmp_path / "no-lora")
    fast = FastPath(lora=missing, steps=2)
    with pytest.raises(GeneratorError, match="cannot load LoRA"):
        CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=fast)
    generator = CoverGenerator.from_pretrained(
        models["sd"], device="cpu", fast=fast, fast_fallback=True
    )
    assert generator.fast is None
    assert type(generator.pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert generator.default_settings().steps == 25
    (note,) = generator.notes
    assert missing in note and "ALBUMCOVER_FAST=0" in note and "ALBUMCOVER_FAST_LORA" in note
    assert not any("lora" in k for k in generator.pipeline.unet.state_dict())
    cover = generator.generate(PROMPT, generator.default_settings(width=64, height=64, steps=2))
    assert cover[0].image.size == (64, 64)


def test_a_family_without_a_few_step_lora_and_a_missing_tiny_vae_fall_back(models, tmp_path):
    # the Hub is offline in tests: the family's own LoRA cannot be fetched either
    hub = CoverGenerator.from_pretrained(
        models["sd"], device="cpu", fast=FastPath(steps=2), fast_fallback=True
    )
    assert hub.fast is None and "Hyper-SD15-2steps-lora.safetensors" in hub.notes[0]
    lora = str(models["sd_lora"])
    no_vae = FastPath(lora=lora, steps=2, vae=str(tmp_path / "no-taesd"))
    generator = CoverGenerator.from_pretrained(
        models["sd"], device="cpu", fast=no_vae, fast_fallback=True
    )
    assert generator.fast is not None and generator.fast.vae is None
    assert type(generator.pipeline.vae).__name__ == "AutoencoderKL"
    assert "tiny decoder" in generator.notes[0] and "ALBUMCOVER_FAST_VAE" in generator.notes[0]
    with_vae = FastPath(lora=lora, steps=2, vae=str(models["taesd"]))
    tiny = CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=with_vae)
    assert type(tiny.pipeline.vae).__name__ == "AutoencoderTiny" and tiny.notes == ()


def test_the_shared_default():
    cpu, gpu = paint_defaults(has_gpu=False), paint_defaults(has_gpu=True)
    assert (cpu.model, cpu.fast, cpu.fast_steps, cpu.fast_vae, cpu.vae) == (
        CPU_MODEL,
        True,
        CPU_FAST_STEPS,
        CPU_FAST_VAE,
        None,
    )
    assert (gpu.model, gpu.fast, gpu.vae, gpu.fast_vae) == (GPU_MODEL, False, GPU_VAE, None)
    own = paint_defaults(False, model="/my/model")
    assert own.model == "/my/model" and own.fast and own.fast_vae is None  # TAESD: SD 1.5's
    assert paint_defaults(False, fast=False).fast_vae is None
    assert CPU_FAST_STEPS == 2 and FAMILIES["sd1"].few_step_lora(CPU_FAST_STEPS).steps == 2
