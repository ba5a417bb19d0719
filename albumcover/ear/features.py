"""Musicnn's input features: log-compressed mel spectrograms cut into 3 s patches.

The recipe is the original's (``musicnn/extractor.py:batch_data``, librosa 0.11 defaults):
``melspectrogram(y, sr=16000, n_fft=512, hop_length=256, n_mels=96)`` (centred frames padded with
zeros, periodic Hann window, power 2, Slaney mel scale and area normalisation, 0 Hz to 8 kHz),
transposed to (frames, 96), then ``log10(10000 * x + 1)``. It is computed here with NumPy alone,
following librosa's precision path (float64 windowing and FFT rounded to complex64, float32
magnitudes and filterbank), so it matches librosa to float32 rounding without importing it
(librosa pulls in scipy.signal and numba: ~2 s in a fresh process). Unlike the original, the log
is taken in float32: musicnn casts to float16 first, which overflows under NumPy 2 and silently
changes the tags (see ../shared/audio/README.md).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .audio import SAMPLE_RATE

N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
# 3 s, the length the models were trained on: the original's time_to_frames(3) + 1
PATCH_FRAMES = 187

# FFT this many frames at a time: bounds the float64 working set (~16 MB)
_BLOCK_FRAMES = 4096


def log_mel_spectrogram(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Log-compressed mel spectrogram of a mono signal: (frames, 96) float32.

    ``audio``: (samples,) float at ``sr`` Hz (16 kHz for Musicnn). frames = 1 + samples // 256,
    one every 16 ms. Values are ``log10(10000 * mel_power + 1)``, computed in float32.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be a 1-D mono signal, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("audio is empty")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be floating point samples, got dtype {audio.dtype}")
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")

    # centre the frames: N_FFT // 2 zeros on both sides (librosa's pad_mode="constant")
    padded = np.pad(audio, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH]
    window = _hann(N_FFT)
    power = np.empty((len(frames), N_FFT // 2 + 1), dtype=np.float32)
    for start in range(0, len(frames), _BLOCK_FRAMES):
        block = frames[start : start + _BLOCK_FRAMES]
        spectrum = np.fft.rfft(block * window, axis=1).astype(np.complex64)
        np.abs(spectrum, out=power[start : start + len(block)])
    np.square(power, out=power)
    # one product for the whole song: every BLAS call pays its threads' spin-up and spin-down
    mel = power @ _mel_basis(int(sr)).T
    # in place, float32 throughout: mel = log10(10000 * mel + 1)
    np.multiply(mel, np.float32(10000), out=mel)
    np.add(mel, np.float32(1), out=mel)
    return np.log10(mel, out=mel)


def make_patches(
    mel: np.ndarray, hop_frames: int = PATCH_FRAMES, patch_frames: int = PATCH_FRAMES
) -> np.ndarray:
    """Cut a (frames, mels) spectrogram into (n_patches, patch_frames, mels) float32 patches.

    A patch starts every ``hop_frames`` frames (the original's ``input_overlap``: a hop below
    ``patch_frames`` overlaps patches). As in the original, trailing frames that do not fill a
    whole patch are dropped (a 30 s clip, 1872 frames, gives 10 patches).

    Input shorter than one patch is looped (tiled along time) up to ``patch_frames`` and gives
    one patch, where the original crashes. Looping rather than padding with silence keeps the
    patch all music: the models pool over time, so seconds of silence would pull the tags towards
    "quiet"/"silence" for what is simply a short clip.
    """
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise ValueError(f"mel must be 2-D (frames, mels), got shape {mel.shape}")
    if mel.shape[0] == 0 or mel.shape[1] == 0:
        raise ValueError(f"mel is empty: shape {mel.shape}")
    for name, value in (("hop_frames", hop_frames), ("patch_frames", patch_frames)):
        if not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    mel = mel.astype(np.float32, copy=False)
    if mel.shape[0] < patch_frames:
        repeats = math.ceil(patch_frames / mel.shape[0])
        mel = np.tile(mel, (repeats, 1))[:patch_frames]
    windows = np.lib.stride_tricks.sliding_window_view(mel, patch_frames, axis=0)[::hop_frames]
    # sliding_window_view puts the window axis last: (n, mels, patch) -> (n, patch, mels)
    return np.ascontiguousarray(windows.transpose(0, 2, 1))


def song_patches(audio: np.ndarray, hop_frames: int = PATCH_FRAMES) -> np.ndarray:
    """A 16 kHz mono signal ``(samples,)`` -> the taggers' input ``(n_patches, 187, 96)`` float32.

    ``make_patches(log_mel_spectrogram(audio), hop_frames)``: what every tagger of a song
    shares, so compute it once per song.
    """
    return make_patches(log_mel_spectrogram(audio), hop_frames=hop_frames)


def spread_patches(patches: np.ndarray, count: int | None) -> np.ndarray:
    """At most ``count`` of a song's patches ``(n, 187, 96)``, spread evenly over it, in order.

    Patch ``floor((i + 0.5) * n / count)`` for ``i < count``: the centres of ``count`` equal
    stretches of the song, so intro and outro weigh no more than the rest. All patches when
    ``count`` is None or ``n <= count``.
    """
    if count is None:
        return patches
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be None or a whole number >= 1, got {count!r}")
    if len(patches) <= count:
        return patches
    picks = ((np.arange(count) + 0.5) * len(patches) / count).astype(np.int64)
    return patches[picks]


def seconds_to_frames(seconds: float) -> int:
    """Whole spectrogram frames in ``seconds``, counted as the original does.

    This is ``librosa.time_to_frames(seconds, sr=16000, n_fft=512, hop_length=256)``, which the
    original uses for the patch hop (its ``input_overlap``); the patch length is this + 1
    (3 s -> 186 + 1 = 187 frames). Raises ValueError below one frame (~0.03 s).
    """
    if not isinstance(seconds, int | float | np.number) or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a finite number, got {seconds!r}")
    samples = int(seconds * SAMPLE_RATE)
    frames = (samples - N_FFT // 2) // HOP_LENGTH
    if frames < 1:
        raise ValueError(
            f"seconds={seconds} is less than one frame "
            f"({(N_FFT // 2 + HOP_LENGTH) / SAMPLE_RATE:.3f} s)"
        )
    return frames


@lru_cache(maxsize=1)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy's get_window("hann", n, fftbins=True)), float64."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    # Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    log_part = min_log_hz * np.exp(logstep * (mel - min_log_mel))
    return np.where(mel >= min_log_mel, log_part, f_sp * mel)


@lru_cache(maxsize=4)
def _mel_basis(sr: int) -> np.ndarray:
    """(N_MELS, 1 + N_FFT // 2) float32 triangles, as librosa.filters.mel(norm="slaney")."""
    fft_freqs = np.fft.rfftfreq(N_FFT, d=1.0 / sr)
    mel_freqs = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2.0), N_MELS + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    # rounded to float32 before normalising, in that order, to match librosa to the last bit
    weights = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    weights *= (2.0 / (mel_freqs[2:] - mel_freqs[:-2]))[:, None]
    weights.setflags(write=False)
    return weights
