"""Musicnn features: the recipe against librosa, patching, and the reference patches."""

import numpy as np
import pytest

from albumcover.ear.audio import SAMPLE_RATE, load_audio
from albumcover.ear.features import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    log_mel_spectrogram,
    make_patches,
    seconds_to_frames,
)


def synthetic(seconds: float, seed: int = 0) -> np.ndarray:
    """A chirp over noise, loud enough to overflow the original's float16 cast."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = np.sin(2 * np.pi * (100 + 1000 * t) * t)
    return (0.9 * chirp + 0.1 * rng.standard_normal(len(t))).astype(np.float32)


def librosa_recipe(audio: np.ndarray) -> np.ndarray:
    """The original's recipe, straight from librosa, with the log in float32."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=audio, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS
    ).T
    assert mel.dtype == np.float32
    return np.log10(10000 * mel + 1)


@pytest.mark.filterwarnings("ignore:n_fft=512 is too large")  # librosa on the short inputs
@pytest.mark.parametrize("samples", [1, 300, N_FFT, 5 * SAMPLE_RATE + 77])
def test_recipe_matches_librosa(samples):
    audio = synthetic(samples / SAMPLE_RATE + 1e-9)[:samples]
    ours = log_mel_spectrogram(audio)
    reference = librosa_recipe(audio)
    assert ours.shape == reference.shape == (1 + samples // HOP_LENGTH, N_MELS)
    assert ours.dtype == np.float32
    # float32 rounding of the filterbank sums, nothing more
    np.testing.assert_allclose(ours, reference, rtol=2e-6, atol=2e-6)


def test_mel_filterbank_is_librosas_bit_for_bit():
    import librosa

    from albumcover.ear.features import _mel_basis

    expected = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    np.testing.assert_array_equal(_mel_basis(SAMPLE_RATE), expected)


def test_log_is_computed_in_float32_not_float16():
    # the original casts to float16 before "10000 * x": under NumPy 2 loud bins become inf
    loud = synthetic(2.0) * 4
    ours = log_mel_spectrogram(loud)
    assert np.isfinite(ours).all()
    import librosa

    power = librosa.feature.melspectrogram(
        y=loud, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS
    ).T
    with np.errstate(over="ignore"):  # the bug we avoid
        assert np.isinf(np.log10(10000 * power.astype(np.float16) + 1)).any()
    np.testing.assert_allclose(ours, np.log10(10000 * power.astype(np.float64) + 1), rtol=1e-5)


def test_features_of_the_clip_match_the_reference_patches(clip_path, reference):
    patches = make_patches(log_mel_spectrogram(load_audio(clip_path)))
    expected = reference["input_patches"]
    assert patches.shape == expected.shape == (10, PATCH_FRAMES, N_MELS)
    assert patches.dtype == np.float32
    difference = np.abs(patches - expected)
    assert difference.max() < 1e-4
    assert difference.mean() < 1e-6


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((2, 100), np.float32), "1-D"),
        (np.zeros(0, np.float32), "empty"),
        (np.arange(100), "floating point"),
        (np.array([0.0, np.nan, 0.1]), "NaN"),
    ],
)
def test_log_mel_rejects_bad_audio(bad, message):
    with pytest.raises(ValueError, match=message):
        log_mel_spectrogram(bad)


def test_patches_follow_the_original_batching():
    mel = np.random.default_rng(0).random((1872, N_MELS), dtype=np.float32)  # a 30 s clip
    patches = make_patches(mel)
    assert patches.shape == (10, PATCH_FRAMES, N_MELS)
    for i, patch in enumerate(patches):
        np.testing.assert_array_equal(patch, mel[i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES])
    # the original: range(0, frames - 187 + 1, hop), trailing frames dropped
    for hop in (1, 61, 94, 186, 187, 500):
        starts = list(range(0, len(mel) - PATCH_FRAMES + 1, hop))
        overlapped = make_patches(mel, hop_frames=hop)
        assert len(overlapped) == len(starts)
        np.testing.assert_array_equal(overlapped[-1], mel[starts[-1] : starts[-1] + PATCH_FRAMES])
    assert patches.flags["C_CONTIGUOUS"]


def test_exactly_one_patch_and_custom_length():
    mel = np.ones((PATCH_FRAMES, N_MELS), np.float32)
    assert make_patches(mel).shape == (1, PATCH_FRAMES, N_MELS)
    assert make_patches(np.ones((100, N_MELS)), patch_frames=50, hop_frames=25).shape == (3, 50, 96)


def test_short_input_is_looped_to_one_patch():
    mel = np.random.default_rng(1).random((80, N_MELS), dtype=np.float32)  # ~1.3 s
    patches = make_patches(mel)
    assert patches.shape == (1, PATCH_FRAMES, N_MELS)
    np.testing.assert_array_equal(patches[0, :80], mel)
    np.testing.assert_array_equal(patches[0, 80:160], mel)
    np.testing.assert_array_equal(patches[0, 160:], mel[: PATCH_FRAMES - 160])


def test_short_clip_end_to_end():
    audio = synthetic(0.5)
    patches = make_patches(log_mel_spectrogram(audio))
    assert patches.shape == (1, PATCH_FRAMES, N_MELS)
    assert np.isfinite(patches).all()


@pytest.mark.parametrize(
    "mel, hop, message",
    [
        (np.zeros(96), PATCH_FRAMES, "2-D"),
        (np.zeros((2, 187, 96)), PATCH_FRAMES, "2-D"),
        (np.zeros((0, 96)), PATCH_FRAMES, "empty"),
        (np.zeros((200, 96)), 0, "hop_frames"),
        (np.zeros((200, 96)), -3, "hop_frames"),
        (np.zeros((200, 96)), 1.5, "hop_frames"),
    ],
)
def test_make_patches_rejects_bad_input(mel, hop, message):
    with pytest.raises(ValueError, match=message):
        make_patches(mel, hop_frames=hop)


def test_seconds_to_frames_counts_like_the_original():
    import librosa

    assert seconds_to_frames(3) + 1 == PATCH_FRAMES
    for seconds in (0.05, 1, 1.5, 2.9, 3, 10.25):
        expected = librosa.time_to_frames(seconds, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=256)
        assert seconds_to_frames(seconds) == expected


@pytest.mark.parametrize("seconds", [0, -1, 0.01, float("nan"), float("inf"), "3"])
def test_seconds_to_frames_rejects_bad_values(seconds):
    with pytest.raises(ValueError, match="seconds"):
        seconds_to_frames(seconds)
