"""The weights' dtype: bfloat16 chosen on a CPU that runs it natively (AVX512_BF16 / AMX),
float32 elsewhere, forceable either way; every component converted (text encoder, UNet, VAE
or tiny VAE, safety checker), not autocast; emulated bfloat16 refused."""

import numpy as np
import pytest
import torch

from albumcover.paint import dtypes
from albumcover.paint.dtypes import bf16_native, default_dtype, parse_dtype, resolve_dtype
from albumcover.paint.generator import CoverGenerator, FastPath, GenerationSettings, GeneratorError
from tests.tiny_models import IMAGE_SIZE, save_tiny_lora, save_tiny_sd, save_tiny_taesd

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
NATIVE = bf16_native(CPU)
needs_bf16 = pytest.mark.skipif(not NATIVE, reason="bfloat16 is emulated on this CPU")
PROMPT = "cover album of rock song"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dtypes")
    sd = save_tiny_sd(root / "sd", safety_checker=True)
    return {
        "sd": sd,
        "lora": save_tiny_lora(sd, root / "lora"),
        "taesd": save_tiny_taesd(root / "t"),
    }


def component_dtypes(generator) -> set:
    pipe = generator.pipeline
    parts = (pipe.unet, pipe.text_encoder, pipe.vae, pipe.safety_checker)
    return {p.dtype for p in parts}


def test_the_cpu_flags_decide_the_default(monkeypatch):
    flags = torch.cpu.get_capabilities()
    assert NATIVE == bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))
    assert default_dtype(CPU) == (torch.bfloat16 if NATIVE else torch.float32)
    monkeypatch.setattr(dtypes, "bf16_native", lambda device: not NATIVE)
    assert default_dtype(CPU) == (torch.float32 if NATIVE else torch.bfloat16)


def test_names():
    assert [parse_dtype(n) for n in (None, "", "auto", "AUTO", "bf16", "fp32", "float16")] == [
        None,
        None,
        None,
        None,
        "bfloat16",
        "float32",
        "float16",
    ]
    with pytest.raises(ValueError, match="unknown dtype 'int8'; one of: auto, float32"):
        parse_dtype("int8")
    with pytest.raises(ValueError, match="floating-point"):
        resolve_dtype(torch.int8, CPU)
    assert resolve_dtype("fp32", CPU) == torch.float32


def test_the_default_converts_every_component(models):
    fast = FastPath(lora=str(models["lora"]), steps=2, vae=str(models["taesd"]))
    generator = CoverGenerator.from_pretrained(models["sd"], device="cpu", fast=fast)
    expected = torch.bfloat16 if NATIVE else torch.float32
    assert generator.dtype == expected and component_dtypes(generator) == {expected}
    assert type(generator.pipeline.vae).__name__ == "AutoencoderTiny"
    cover = generator.generate(PROMPT, generator.default_settings(width=64, height=64, seed=1))
    assert cover[0].image.size == (IMAGE_SIZE, IMAGE_SIZE) and cover[0].image.mode == "RGB"


@needs_bf16
def test_forced_either_way_paints_nearly_the_same(models):
    fp32 = CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype="float32")
    bf16 = CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype=torch.bfloat16)
    assert component_dtypes(fp32) == {torch.float32}
    assert component_dtypes(bf16) == {torch.bfloat16}
    settings = GenerationSettings(steps=2, width=64, height=64, seed=3)
    a, b = (np.asarray(g.generate(PROMPT, settings)[0].image, np.int16) for g in (fp32, bf16))
    other = np.asarray(
        fp32.generate(PROMPT, GenerationSettings(steps=2, width=64, height=64, seed=4))[0].image,
        np.int16,
    )
    # bf16 rounds (8 bits of mantissa), yet stays far closer than another seed's painting
    assert np.abs(a - b).mean() < np.abs(a - other).mean() / 2


def test_emulated_bf16_is_refused(models, monkeypatch):
    monkeypatch.setattr(dtypes, "bf16_native", lambda device: False)
    with pytest.raises(GeneratorError, match="bfloat16 is emulated on this CPU.*use float32"):
        CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype="bf16")
    with pytest.raises(GeneratorError, match="unknown dtype"):
        CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype="half-ish")
    # and without bf16 the default is float32
    assert CoverGenerator.from_pretrained(models["sd"], device="cpu").dtype == torch.float32


def test_cpu_convolutions_run_channels_last(models):
    generator = CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype="float32")
    for module in (generator.pipeline.unet, generator.pipeline.vae):
        convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs and all(
            c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs
        )
    # the same painting as the plain layout, up to float rounding
    plain = CoverGenerator.from_pretrained(models["sd"], device="cpu", dtype="float32")
    for module in (plain.pipeline.unet, plain.pipeline.vae):
        module.to(memory_format=torch.contiguous_format)
    settings = GenerationSettings(steps=2, width=64, height=64, seed=5)
    a, b = (np.asarray(g.generate(PROMPT, settings)[0].image, np.int16) for g in (generator, plain))
    assert np.abs(a - b).max() <= 2
