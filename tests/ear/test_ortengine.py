"""The ONNX Runtime engine: float32 Musicnn on a CPU, exported once per set of weights.

Held to the original's taggram (1e-5, as tests/ear/test_musicnn.py), to the other engines, and to
its cache: exported on first use, read back by later taggers, exported again when the cached
file is corrupt, and never needed (only slower) where the cache cannot be written.
"""

import logging
import sys

import numpy as np
import pytest
import torch

from albumcover.ear import ortengine
from albumcover.ear.tagger import ENGINES, Tagger

MODELS = ("MTT_musicnn", "MSD_musicnn")


@pytest.fixture
def onnx_tagger(tmp_path):
    def load(model="MTT_musicnn", **kwargs):
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        return Tagger.load(model, "cpu", dtype=torch.float32, **kwargs)

    return load


@pytest.mark.parametrize("model", MODELS)
def test_onnx_engine_matches_the_original_and_the_gemm_engine(onnx_tagger, reference, model):
    tagger = onnx_tagger(model)
    assert tagger.engine == "onnx"  # float32 on a CPU with onnxruntime installed
    patches = reference["input_patches"]
    result = tagger.tag_patches(patches)
    assert np.abs(result.taggram - reference[f"{model}.taggram"]).max() <= 1e-5
    gemm = Tagger.load(model, "cpu", dtype=torch.float32, engine="gemm").tag_patches(patches)
    assert np.abs(result.taggram - gemm.taggram).max() <= 1e-6
    assert result.tags == gemm.tags


def test_threads_do_not_change_the_numbers(onnx_tagger, reference):
    tagger = onnx_tagger()
    patches = reference["input_patches"][:5]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = tagger.tag_patches(patches).taggram
        torch.set_num_threads(2)
        two = tagger.tag_patches(patches).taggram
    finally:
        torch.set_num_threads(threads)
    assert len(tagger._ort.sessions) == 2
    assert np.array_equal(one, two)  # each patch runs alone, whichever session takes it


def test_the_export_is_cached_and_reused(onnx_tagger, reference, tmp_path, monkeypatch):
    patches = reference["input_patches"][:2]
    first = onnx_tagger().tag_patches(patches)
    (cached,) = (tmp_path / "cache").glob("MTT_musicnn-*.onnx")

    def no_export(*args):
        raise AssertionError("exported again although the cache holds the model")

    monkeypatch.setattr(ortengine, "export_network", no_export)
    again = onnx_tagger().tag_patches(patches)  # a fresh tagger, as a new process would be
    assert np.array_equal(first.taggram, again.taggram)
    # other weights, another file: the name carries a hash of the weights
    other = onnx_tagger("MSD_musicnn")
    with pytest.raises(AssertionError, match="exported again"):
        other.tag_patches(patches)
    assert [p.name for p in (tmp_path / "cache").glob("*.onnx")] == [cached.name]


def test_a_corrupt_cached_export_is_exported_again(onnx_tagger, reference, tmp_path, caplog):
    patches = reference["input_patches"][:2]
    good = onnx_tagger().tag_patches(patches)
    (cached,) = (tmp_path / "cache").glob("*.onnx")
    data = cached.read_bytes()
    for broken in (data[: len(data) // 2], b"not an onnx file", b""):
        cached.write_bytes(broken)
        with caplog.at_level(logging.WARNING, logger="albumcover.ear.ortengine"):
            result = onnx_tagger().tag_patches(patches)
        assert np.array_equal(result.taggram, good.taggram)
        assert "exporting MTT_musicnn again" in caplog.text
        assert cached.read_bytes() == data  # repaired in place
        caplog.clear()


def test_an_unwritable_cache_costs_an_export_not_the_tags(onnx_tagger, reference, tmp_path, caplog):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    patches = reference["input_patches"][:2]
    with caplog.at_level(logging.WARNING, logger="albumcover.ear.ortengine"):
        tagger = onnx_tagger(cache_dir=tmp_path / "cache")
        tagger._cache_dir = blocker / "cache"  # the weights are cached; the export cannot be
        result = tagger.tag_patches(patches)
    assert np.abs(result.taggram - reference["MTT_musicnn.taggram"][:2]).max() <= 1e-5
    assert "cannot cache the ONNX export" in caplog.text


def test_engine_choice_and_refusals(monkeypatch, reference):
    assert ENGINES == ("auto", "onnx", "gemm", "torch")
    assert Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32, engine="gemm").engine == "gemm"
    torch_engine = Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32, engine="torch")
    assert torch_engine.engine == "torch"
    result = torch_engine.tag_patches(reference["input_patches"][:2])
    assert np.abs(result.taggram - reference["MTT_musicnn.taggram"][:2]).max() <= 1e-5
    with pytest.raises(ValueError, match="engine must be one of auto, onnx, gemm, torch"):
        Tagger.load("MTT_musicnn", "cpu", engine="tensorrt")
    with pytest.raises(ValueError, match="engine='onnx' runs Musicnn in float32 on a CPU"):
        Tagger.load("MTT_vgg", "cpu", dtype=torch.float32, engine="onnx")
    # features come from the torch network whatever the engine
    tagger = Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32)
    features = tagger.tag_patches(reference["input_patches"][:1], features=True).features
    assert features["penultimate"].shape == (1, 200)


def test_without_onnxruntime_float32_runs_on_the_gemm_engine(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    assert not ortengine.available()
    assert Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32).engine == "gemm"
    with pytest.raises(ValueError, match="onnxruntime not installed"):
        Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32, engine="onnx")


def test_bfloat16_stays_on_the_gemm_engine():
    from albumcover.ear.tagger import bf16_supported

    if not bf16_supported(torch.device("cpu")):
        pytest.skip("bfloat16 is emulated on this CPU")
    assert Tagger.load("MTT_musicnn", "cpu", dtype=torch.bfloat16).engine == "gemm"
    with pytest.raises(ValueError, match="in torch.bfloat16"):
        Tagger.load("MTT_musicnn", "cpu", dtype=torch.bfloat16, engine="onnx")
