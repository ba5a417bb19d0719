"""Tagger end to end: from the shared mp3 to tags, batching, features, bad arguments."""

import numpy as np
import pytest
import torch

from albumcover.ear.audio import AudioError, load_audio
from albumcover.ear.features import log_mel_spectrogram, make_patches
from albumcover.ear.musicnn import MSD_LABELS, MTT_LABELS
from albumcover.ear.tagger import MODELS, Tagger, TagResult, bf16_supported


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights-cache")


@pytest.fixture(scope="module")
def mtt(cache_dir) -> Tagger:
    # float32 forced: these tests check the original's numbers to 1e-5 (bf16 is tested below)
    return Tagger.load("MTT_musicnn", "cpu", dtype=torch.float32, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def clip_audio(clip_path) -> np.ndarray:
    return load_audio(clip_path)


@pytest.fixture(scope="module")
def clip_result(mtt, clip_path) -> TagResult:
    return mtt.tag(clip_path, features=True)


def test_tags_the_shared_clip_like_the_original(clip_result, reference):
    result = clip_result
    assert result.model == "MTT_musicnn"
    assert result.tags == ["guitar", "piano", "fast"]  # as Musicnn's documentation states
    assert result.labels == MTT_LABELS
    assert result.taggram.dtype == np.float32
    assert result.taggram.shape == (10, 50)
    # decoding and resampling may differ a little from librosa's; the network does not
    assert np.abs(result.taggram - reference["MTT_musicnn.taggram"]).max() < 1e-3
    assert list(result.scores) == MTT_LABELS
    np.testing.assert_allclose(list(result.scores.values()), result.taggram.mean(0), rtol=1e-6)


def test_features_in_the_original_extractors_layout(clip_result, mtt, reference):
    features = clip_result.features
    assert {name: f.shape for name, f in features.items()} == {
        "timbral": (1870, 408),
        "temporal": (1870, 153),
        "cnn1": (1870, 64),
        "cnn2": (1870, 64),
        "cnn3": (1870, 64),
        "mean_pool": (10, 753),
        "max_pool": (10, 753),
        "penultimate": (10, 200),
    }
    # frame-level features: patch after patch along the first axis, as the original's
    # np.squeeze + concatenate leaves them
    with torch.inference_mode():
        patches = torch.from_numpy(reference["input_patches"][[1, 9]])
        _, batched = mtt.network.forward_features(patches)
    np.testing.assert_allclose(features["timbral"][187:374], batched["timbral"][0], atol=1e-3)
    np.testing.assert_allclose(features["cnn3"][-187:], batched["cnn3"][1], atol=1e-3)
    np.testing.assert_allclose(features["penultimate"][9], batched["penultimate"][1], atol=1e-3)
    assert clip_result.features is not None
    assert mtt.tag(np.zeros(16000, np.float32) + 0.1, features=False).features is None


def test_vgg_features_and_msd_labels(cache_dir, reference):
    vgg = Tagger.load("MSD_vgg", "cpu", dtype=torch.float32, cache_dir=cache_dir)
    assert vgg.labels == MSD_LABELS
    result = vgg.tag_patches(reference["input_patches"][:2], top=5, features=True)
    assert {name: f.shape for name, f in result.features.items()} == {
        "pool1": (184, 48, 128),
        "pool2": (92, 24, 128),
        "pool3": (46, 12, 128),
        "pool4": (22, 6, 128),
        "pool5": (4, 128),  # np.squeeze drops the width of 1 too
    }
    np.testing.assert_allclose(result.taggram, reference["MSD_vgg.taggram"][:2], atol=1e-5, rtol=0)
    assert len(result.tags) == 5


def test_batch_size_does_not_change_the_results(mtt, reference):
    patches = reference["input_patches"][:4]
    one_batch = mtt.tag_patches(patches)
    small = Tagger(
        "MTT_musicnn", mtt.network, mtt.labels, device=mtt.device, batch_size=3
    ).tag_patches(patches)  # batches of 3 and 1
    np.testing.assert_allclose(small.taggram, one_batch.taggram, atol=1e-6)


def test_signal_and_path_give_the_same_tags(mtt, clip_audio, tmp_path):
    import soundfile as sf

    signal = clip_audio[: 16000 * 4]
    path = tmp_path / "clip.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    from_path, from_signal = mtt.tag(path, top=5), mtt.tag(signal, top=5)
    np.testing.assert_array_equal(from_path.taggram, from_signal.taggram)
    assert from_path.tags == from_signal.tags


def test_hop_overlaps_patches(mtt, clip_audio):
    signal = clip_audio[: 16000 * 5]  # 5 s: fast
    result = mtt.tag(signal, hop_seconds=1.0, top=2)
    expected = len(make_patches(log_mel_spectrogram(signal), hop_frames=62))
    assert result.taggram.shape == (expected, 50) and expected == 3
    assert len(result.tags) == 2


def test_a_clip_shorter_than_a_patch_is_tagged(mtt, clip_audio):
    result = mtt.tag(clip_audio[:16000], top=0)
    assert result.taggram.shape == (1, 50)
    assert result.tags == []


def test_top_orders_every_label_by_score(mtt):
    result = mtt.tag_patches(np.zeros((1, 187, 96), np.float32), top=50)
    scores = [result.scores[t] for t in result.tags]
    assert scores == sorted(scores, reverse=True)
    assert sorted(result.tags) == sorted(MTT_LABELS)


@pytest.mark.parametrize("top", [-1, 51, 2.0, True, "3"])
def test_bad_top(mtt, top):
    with pytest.raises(ValueError, match="top must be an integer from 0 to 50"):
        mtt.tag_patches(np.zeros((1, 187, 96), np.float32), top=top)


@pytest.mark.parametrize("shape", [(187, 96), (0, 187, 96), (1, 186, 96), (2, 187, 95)])
def test_bad_patches(mtt, shape):
    with pytest.raises(ValueError, match="patches must have shape"):
        mtt.tag_patches(np.zeros(shape, np.float32))


def test_bad_audio(mtt, tmp_path):
    with pytest.raises(AudioError, match="file not found"):
        mtt.tag(tmp_path / "missing.mp3")
    (tmp_path / "notes.txt").write_text("not music")
    with pytest.raises(AudioError, match="notes.txt"):
        mtt.tag(str(tmp_path / "notes.txt"))
    with pytest.raises(TypeError, match="path or a numpy array"):
        mtt.tag(b"bytes")
    with pytest.raises(ValueError, match="1-D mono"):
        mtt.tag(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="less than one frame"):
        mtt.tag(np.ones(16000, np.float32), hop_seconds=0.01)


def test_load_arguments_are_checked(cache_dir):
    with pytest.raises(ValueError, match="unknown model 'MSD_musicnn_big'"):
        Tagger.load("MSD_musicnn_big", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="invalid device 'gpu0'"):
        Tagger.load("MTT_vgg", "gpu0", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="dtype must be one of"):
        Tagger.load("MTT_vgg", "cpu", dtype=torch.int8, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="float16 is only supported on CUDA"):
        Tagger.load("MTT_vgg", "cpu", dtype=torch.float16, cache_dir=cache_dir)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        Tagger.load("MTT_vgg", "cpu", batch_size=0, cache_dir=cache_dir)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Tagger.load("MTT_vgg", "cuda", cache_dir=cache_dir)
    assert set(MODELS) == {"MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"}


@pytest.mark.skipif(bf16_supported(torch.device("cpu")), reason="this CPU runs bfloat16 natively")
def test_bf16_is_refused_where_it_would_be_emulated(cache_dir):
    with pytest.raises(ValueError, match="bfloat16 is not supported natively on cpu"):
        Tagger.load("MTT_musicnn", "cpu", dtype=torch.bfloat16, cache_dir=cache_dir)


@pytest.mark.skipif(
    not bf16_supported(torch.device("cpu")),
    reason="bfloat16 is emulated on this CPU (~10x slower than float32)",
)
def test_bf16_tags_like_fp32(cache_dir, reference, mtt):
    bf16 = Tagger.load("MTT_musicnn", "cpu", dtype=torch.bfloat16, cache_dir=cache_dir)
    patches = reference["input_patches"][:2]
    fast, exact = bf16.tag_patches(patches, top=3), mtt.tag_patches(patches, top=3)
    assert fast.taggram.dtype == np.float32
    assert np.abs(fast.taggram - exact.taggram).max() < 0.03
    assert fast.tags[0] == exact.tags[0]
