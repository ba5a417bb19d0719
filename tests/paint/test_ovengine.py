"""The UNet through OpenVINO (albumcover.paint.ovengine): the same covers as torch up to rounding,
at every size and batch; one export per set of weights, reused by later loads; a damaged export
made again; the cache pruned to the most recently used; and every case where it cannot run
refused (engine="openvino") or falling back to torch (engine="auto")."""

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")  # no wheel for Linux aarch64: there the UNet runs in torch

from albumcover.paint import ovengine
from albumcover.paint.defaults import paint_defaults
from albumcover.paint.dtypes import bf16_native
from albumcover.paint.generator import CoverGenerator, GenerationSettings, GeneratorError
from tests.tiny_models import save_tiny_lora, save_tiny_sd, save_tiny_sdxl
from tests.unprivileged import call_unprivileged

pytestmark = pytest.mark.usefixtures("one_torch_thread")
PROMPT = "cover album of rock song, by Someone"


def settings(**kw) -> GenerationSettings:
    return GenerationSettings(**{"steps": 2, "width": 64, "height": 64, "seed": 7, **kw})


def pixels(covers) -> np.ndarray:
    return np.stack([np.asarray(c.image, dtype=np.int16) for c in covers])


def needs_bf16():
    import torch

    if not bf16_native(torch.device("cpu")):
        pytest.skip("this CPU has no native bfloat16 (AVX512_BF16 or AMX)")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ovengine")
    sd = save_tiny_sd(root / "sd")
    return {
        "sd": sd,
        "lora": save_tiny_lora(sd, root / "lora"),
        "sdxl": save_tiny_sdxl(root / "xl"),
    }


@pytest.fixture
def counted(monkeypatch):
    """How many passes OpenVINO ran (the torch UNet's are not counted)."""
    calls = []
    run = ovengine.OvUNet.__call__

    def counting(self, *args):
        calls.append(tuple(args[0].shape))
        return run(self, *args)

    monkeypatch.setattr(ovengine.OvUNet, "__call__", counting)
    return calls


def load(model, cache, engine="openvino", dtype="float32", **kw) -> CoverGenerator:
    return CoverGenerator.from_pretrained(
        model, device="cpu", dtype=dtype, engine=engine, engine_cache=cache, **kw
    )


@pytest.mark.parametrize(
    "size, n, guidance",
    [((64, 64), 1, 0.0), ((96, 64), 2, 5.0), ((64, 128), 3, 1.0)],
    ids=["one", "two-with-guidance", "three-portrait"],
)
def test_float32_covers_match_torch_at_every_size_and_batch(
    models, tmp_path, counted, size, n, guidance
):
    torch_gen = load(models["sd"], tmp_path, engine="torch")
    ov_gen = load(models["sd"], tmp_path)
    assert (torch_gen.engine, ov_gen.engine) == ("torch", "openvino")
    s = settings(width=size[0], height=size[1], num_images=n, guidance_scale=guidance)
    expected = pixels(torch_gen.generate(PROMPT, s))
    got = pixels(ov_gen.generate(PROMPT, s))
    assert got.shape == expected.shape == (n, size[1], size[0], 3)
    assert np.abs(got - expected).max() <= 2  # float32 sums in another order
    batch = 2 * n if guidance > 1 else n  # classifier-free guidance doubles the batch
    scale = ov_gen.pipeline.vae_scale_factor
    assert counted == [(batch, 4, size[1] // scale, size[0] // scale)] * 2  # both steps in OpenVINO


def test_bfloat16_covers_stay_close_to_torch_bfloat16(models, tmp_path, counted):
    needs_bf16()
    s = settings(num_images=2)
    expected = pixels(
        load(models["sd"], tmp_path, engine="torch", dtype="bf16").generate(PROMPT, s)
    )
    ov_gen = load(models["sd"], tmp_path, dtype="bf16")
    got = pixels(ov_gen.generate(PROMPT, s))
    again = pixels(ov_gen.generate(PROMPT, s))
    assert np.array_equal(got, again)  # a seed still reproduces its cover
    # both round to bfloat16, at different places: close, not equal
    assert np.abs(got - expected).mean() < 4 and np.abs(got - expected).max() < 64
    assert len(counted) == 4


def test_the_export_is_made_once_and_reused(models, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="albumcover.paint.ovengine")
    first = pixels(load(models["sd"], tmp_path).generate(PROMPT, settings()))
    assert "converted and cached" in caplog.text
    (export,) = tmp_path.glob("unet-*")
    written = {p.name: p.stat().st_mtime_ns for p in export.iterdir()}
    assert set(written) == {"unet.xml", "unet.bin"}
    caplog.clear()
    second = pixels(load(models["sd"], tmp_path).generate(PROMPT, settings()))
    assert "read from the cache" in caplog.text and "converted" not in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in export.iterdir()} == written
    assert np.array_equal(first, second)
    assert not list(tmp_path.glob(".unet-*"))  # no staging folder left behind


def test_other_weights_get_their_own_export(models, tmp_path):
    load(models["sd"], tmp_path)
    load(models["sd"], tmp_path, lora=models["lora"])  # a LoRA fused in: other weights
    assert len(list(tmp_path.glob("unet-*"))) == 2


@pytest.mark.parametrize(
    "damage",
    ["truncated weights", "garbage graph", "empty graph", "weights missing", "graph a folder"],
)
def test_a_damaged_export_is_made_again(models, tmp_path, caplog, damage):
    good = pixels(load(models["sd"], tmp_path).generate(PROMPT, settings()))
    (export,) = tmp_path.glob("unet-*")
    xml, weights = export / "unet.xml", export / "unet.bin"
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    elif damage == "garbage graph":
        xml.write_bytes(os.urandom(4096))
    elif damage == "empty graph":
        xml.write_text("")
    elif damage == "weights missing":
        weights.unlink()
    else:
        xml.unlink()
        xml.mkdir()
    caplog.set_level(logging.INFO, logger="albumcover.paint.ovengine")
    again = load(models["sd"], tmp_path)
    assert again.engine == "openvino" and "converted and cached" in caplog.text
    if damage != "graph a folder":
        assert "is unreadable" in caplog.text
    assert np.array_equal(pixels(again.generate(PROMPT, settings())), good)
    assert xml.is_file() and weights.stat().st_size > 0


def read_export(unet_folder: str, cache: str) -> str:
    """What loading ``unet_folder`` in float32 against ``cache`` did: "read" or "exported"."""
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(unet_folder, torch_dtype=torch.float32)
    _, attached = ovengine.load_unet(unet, Path(cache), threads=1)
    return "exported" if attached.exported else "read"


def test_a_read_only_cache_with_a_good_export_is_used_as_it_is(models, tmp_path):
    """A shared cache another user wrote: readable, not writable, not ours to touch."""
    if os.geteuid() != 0:
        pytest.skip("giving the export another owner needs root")
    assert read_export(str(models["sd"] / "unet"), str(tmp_path)) == "exported"
    (export,) = tmp_path.glob("unet-*")
    for path in (export / "unet.xml", export / "unet.bin", export, tmp_path):
        path.chmod(0o555 if path.is_dir() else 0o444)
        os.chown(path, 65534, 65534)  # nobody's
    try:
        assert call_unprivileged(read_export, models["sd"] / "unet", tmp_path) == "'read'"
    finally:
        for path in (tmp_path, export):
            os.chown(path, 0, 0)
            path.chmod(0o755)


def test_only_the_most_recently_used_exports_are_kept(models, tmp_path):
    now = time.time()
    old = []
    for age in range(5):  # five older exports, the first the most recently used
        folder = tmp_path / f"unet-old{age}"
        folder.mkdir()
        (folder / "unet.xml").write_text("stale")
        os.utime(folder, (now - 100 * (age + 1),) * 2)
        old.append(folder)
    killed = tmp_path / ".unet-abc-killed"  # a staging folder from a killed process, days ago
    killed.mkdir()
    os.utime(killed, (now - 3 * 86400,) * 2)
    load(models["sd"], tmp_path)
    left = sorted(p.name for p in tmp_path.iterdir())
    kept = [p.name for p in old[: ovengine.KEEP_EXPORTS - 1]]
    assert len(left) == ovengine.KEEP_EXPORTS and set(kept) < set(left), left
    assert not killed.exists()


def test_other_inputs_run_in_torch(models, tmp_path, counted):
    import torch

    gen = load(models["sd"], tmp_path)
    unet = gen.pipeline.unet
    sample = torch.randn(1, 4, 8, 8)
    text = torch.randn(1, 77, unet.config.cross_attention_dim)
    with torch.no_grad():
        plain = unet(sample, 10, text).sample
        scaled = unet(sample, 10, text, cross_attention_kwargs={"scale": 1.0}, return_dict=False)
    assert len(counted) == 1  # the plain pass only
    # the export traced it in the plain layout and put the CPU's channels-last one back
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert scaled[0].shape == plain.shape and torch.allclose(scaled[0], plain, atol=1e-4)


def test_where_openvino_cannot_run_it_is_refused_or_torch_takes_over(models, tmp_path):
    with pytest.raises(GeneratorError, match="addition_embed_type.*use the torch engine"):
        load(models["sdxl"], tmp_path)
    assert load(models["sdxl"], tmp_path, engine="auto").engine == "torch"
    with pytest.raises(GeneratorError, match="OpenVINO runs bfloat16 or float32, not float16"):
        load(models["sd"], tmp_path, dtype="float16")
    with pytest.raises(GeneratorError, match="engine must be one of auto, torch, openvino"):
        load(models["sd"], tmp_path, engine="tensorrt")
    # float32 on a CPU: OpenVINO was not measured faster, so auto keeps torch
    assert load(models["sd"], tmp_path, engine="auto").engine == "torch"
    assert not list(tmp_path.iterdir())  # nothing converted for any of these


def test_auto_falls_back_to_torch_with_a_note_when_the_export_cannot_be_written(models, tmp_path):
    needs_bf16()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    gen = load(models["sd"], blocked, engine="auto", dtype="bf16")
    assert gen.engine == "torch"
    assert any("OpenVINO could not convert it" in note for note in gen.notes), gen.notes
    assert len(gen.generate(PROMPT, settings())) == 1
    with pytest.raises(GeneratorError, match="OpenVINO cannot run the UNet"):
        load(models["sd"], blocked, dtype="bf16")


def test_auto_picks_openvino_in_bfloat16_on_a_cpu(models, tmp_path):
    needs_bf16()
    assert load(models["sd"], tmp_path, engine="auto", dtype="bf16").engine == "openvino"


def test_the_default_engine_is_auto_without_a_gpu_and_torch_with_one():
    assert paint_defaults(False).engine == "auto"
    assert paint_defaults(True).engine == "torch"
    assert paint_defaults(False, engine="torch").engine == "torch"
