"""The tagger's fast paths: the sgemm front end against the original, bf16 chosen where native.

``Tagger`` runs Musicnn's front end as chunked sgemm (albumcover.ear.frontend) on CPUs; these tests
hold it to the original's taggram (1e-5, the same bar as tests/ear/test_musicnn.py) and to the
plain torch network, and check which dtype a CPU gets by default and that float32 can be forced.
"""

import threading

import numpy as np
import pytest
import torch

from albumcover.ear import tagger as tagger_module
from albumcover.ear.audio import load_audio
from albumcover.ear.features import song_patches
from albumcover.ear.frontend import GemmFrontend
from albumcover.ear.tagger import Tagger, bf16_supported, default_dtype

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(
    not bf16_supported(CPU), reason="bfloat16 is emulated on this CPU (no AVX512_BF16/AMX)"
)


@pytest.fixture(scope="module")
def fp32():
    models = ("MTT_musicnn", "MSD_musicnn")
    return {m: Tagger.load(m, "cpu", dtype=torch.float32, engine="gemm") for m in models}


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_gemm_front_end_matches_the_original(fp32, reference, model):
    tagger = fp32[model]
    assert tagger.engine == "gemm"
    patches = reference["input_patches"]
    result = tagger.tag_patches(patches)
    assert np.abs(result.taggram - reference[f"{model}.taggram"]).max() <= 1e-5
    # and the plain torch network (conv2d) on the same patches
    with torch.inference_mode():
        logits = tagger.network(torch.from_numpy(patches)).numpy()
    assert np.abs(result.taggram - 1 / (1 + np.exp(-logits))).max() <= 1e-5


def normalised_patches(network, reference, n: int) -> np.ndarray:
    """The first ``n`` reference patches after the network's input batch norm: (n, T, 96)."""
    with torch.inference_mode():
        x = network.input_bn(torch.from_numpy(reference["input_patches"][:n]).unsqueeze(1))
    return x.squeeze(1).numpy()


def test_threads_do_not_change_the_numbers(fp32, reference):
    network = fp32["MTT_musicnn"].network
    x = normalised_patches(network, reference, 4)
    frontend = GemmFrontend(network)
    threads = torch.get_num_threads()
    one, two = frontend(x, threads=1), frontend(x, threads=2)
    assert one.shape == (4, 561, 187)
    assert np.array_equal(one, two)
    assert torch.get_num_threads() == threads  # the caller's torch threads are left alone


def _fresh_thread_sees() -> tuple[int, dict]:
    """torch's thread count and the BLAS limits, as a thread started now sees them."""
    from threadpoolctl import threadpool_info

    seen = {}

    def probe():
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {i["filepath"]: i["num_threads"] for i in threadpool_info()}

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return seen["torch"], seen["blas"]


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=needs_bf16)])
def test_a_song_leaves_no_thread_setting_behind(fp32, reference, bf16):
    """torch's thread count is process-wide: a song must not leave later threads (gradio's
    workers, which run Generate) on one core, alone or with two songs at once."""
    network = fp32["MTT_musicnn"].network
    x = normalised_patches(network, reference, 6)
    frontend = GemmFrontend(network)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        before = _fresh_thread_sees()
        assert before[0] == 2
        frontend(x, threads=2, bf16=bf16)
        frontend(x, threads=1, bf16=bf16)
        assert _fresh_thread_sees() == before
        # two songs at once, overlapping; each ends while the other may still run
        start = threading.Barrier(2)

        def song():
            start.wait()
            for _ in range(3):
                frontend(x, threads=2, bf16=bf16)

        songs = [threading.Thread(target=song) for _ in range(2)]
        for t in songs:
            t.start()
        for t in songs:
            t.join()
        assert _fresh_thread_sees() == before
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_other_engines_where_the_gemm_path_does_not_apply(reference):
    vgg = Tagger.load("MTT_vgg", "cpu", dtype=torch.float32)
    assert vgg.engine == "torch"
    result = vgg.tag_patches(reference["input_patches"][:2])
    assert np.abs(result.taggram - reference["MTT_vgg.taggram"][:2]).max() <= 1e-5


def test_default_dtype_follows_the_cpu(monkeypatch):
    native = bf16_supported(CPU)
    assert default_dtype(CPU) == (torch.bfloat16 if native else torch.float32)
    auto = Tagger.load("MTT_musicnn", "cpu")
    assert auto.dtype == default_dtype(CPU)
    forced = Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32)
    assert forced.dtype == torch.float32 and "float32" in repr(forced)
    # the other kind of CPU than this one
    monkeypatch.setattr(tagger_module, "bf16_supported", lambda device: not native)
    assert default_dtype(CPU) == (torch.float32 if native else torch.bfloat16)
    assert Tagger.load("MTT_musicnn", "cpu").dtype == default_dtype(CPU)


def test_bf16_choice_is_logged(caplog):
    with caplog.at_level("INFO", logger="albumcover.ear.tagger"):
        tagger = Tagger.load("MSD_musicnn", "cpu")
    if tagger.dtype == torch.bfloat16:
        assert "bfloat16" in caplog.text and "dtype=torch.float32 forces" in caplog.text
    else:
        assert "bfloat16" not in caplog.text


@needs_bf16
def test_bf16_gives_the_same_top10_on_both_shared_clips(fp32, clip_path):
    audio = load_audio(clip_path)
    clips = {"30 s clip": audio, "3-minute song": np.tile(audio, 6)}
    for model, exact in fp32.items():
        fast = Tagger.load(model, "cpu", dtype=torch.bfloat16)
        assert fast.engine == "gemm"
        for name, signal in clips.items():
            patches = song_patches(signal)
            a, b = exact.tag_patches(patches, top=10), fast.tag_patches(patches, top=10)
            assert b.tags == a.tags, (model, name)
            assert np.abs(a.taggram - b.taggram).max() < 0.02, (model, name)
