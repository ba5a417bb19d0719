"""load_audio: every supported format, the duration cap, and every kind of bad file."""

import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from albumcover.ear.audio import DEFAULT_MAX_DURATION, SAMPLE_RATE, AudioError, load_audio

SECONDS = 10  # the variants are cut from the shared clip: long enough to compare, quick to encode


def ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.fail("ffmpeg is required (packages.txt) to write the test variants")
    subprocess.run([exe, "-nostdin", "-v", "error", "-y", *args], check=True)


def encode(src, dst, *options: str, seconds: float = SECONDS):
    ffmpeg("-i", str(src), "-t", str(seconds), *options, str(dst))
    return dst


def correlation_after_alignment(y: np.ndarray, ref: np.ndarray, max_lag: int = 1600) -> float:
    """Pearson correlation of y and ref at the lag (within 0.1 s) that maximises it."""
    n = min(len(y), len(ref))
    spectrum = np.fft.rfft(y[:n], 2 * n) * np.conj(np.fft.rfft(ref[:n], 2 * n))
    xcorr = np.fft.irfft(spectrum)
    lags = np.r_[0:max_lag, -max_lag:0]
    lag = int(lags[np.argmax(np.r_[xcorr[:max_lag], xcorr[-max_lag:]])])
    shifted = y[lag:] if lag >= 0 else np.pad(y, (-lag, 0))
    m = min(len(shifted), len(ref)) - max_lag
    return float(np.corrcoef(shifted[:m], ref[:m])[0, 1])


@pytest.fixture(scope="module")
def clip_audio(clip_path):
    return load_audio(clip_path, max_duration=SECONDS)


# name -> (ffmpeg output options, lossless)
VARIANTS = {
    "wav": ([], True),
    "flac": ([], True),
    "22k_mono.wav": (["-ac", "1"], True),
    "44k.wav": (["-ar", "44100"], True),
    "ogg": (["-c:a", "libvorbis"], False),
    "opus": (["-c:a", "libopus"], False),
    "m4a": (["-c:a", "aac"], False),
    "aac": (["-c:a", "aac"], False),  # raw ADTS stream
    "mono.mp3": (["-ac", "1"], False),
    "stereo.mp3": (["-ac", "2"], False),
    "44k.mp3": (["-ar", "44100"], False),
    "48k.mp3": (["-ar", "48000"], False),
    # VBR without a Xing header: libsndfile would stop at its estimate, so ffmpeg decodes it
    "vbr.mp3": (["-q:a", "4", "-write_xing", "0"], False),
}


@pytest.fixture(scope="module")
def variants(clip_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("variants")
    return {
        name: encode(clip_path, folder / f"clip.{name}", *options)
        for name, (options, _) in VARIANTS.items()
    }


def test_clip_decodes_like_librosa_load(clip_path):
    audio = load_audio(clip_path)
    # librosa.load(sr=16000): ceil(660340 frames * 16000 / 22050) samples
    assert audio.shape == (479159,)
    assert audio.dtype == np.float32
    assert 0.5 < np.abs(audio).max() < 1.5


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_format_decodes_to_16k_mono(name, variants, clip_audio):
    audio = load_audio(variants[name])
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    # encoder delay and AAC priming may add a few ms, never more
    assert abs(len(audio) / SAMPLE_RATE - SECONDS) < 0.1
    lossless = VARIANTS[name][1]
    if lossless:
        n = min(len(audio), len(clip_audio))
        error = np.linalg.norm(audio[:n] - clip_audio[:n]) / np.linalg.norm(clip_audio[:n])
        assert error < 0.01  # 16-bit rounding and clipping of the mp3's overshoots
    else:
        assert correlation_after_alignment(audio, clip_audio) > 0.99


def test_vbr_mp3_without_length_header_decodes_whole(variants):
    # libsndfile stops at its bitrate estimate of the length (here short of 10 s)
    estimated = sf.info(str(variants["vbr.mp3"])).duration
    audio = load_audio(variants["vbr.mp3"])
    assert len(audio) / SAMPLE_RATE >= max(SECONDS, estimated)


def test_channels_are_averaged_and_16k_is_passed_through(tmp_path):
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    left = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = np.full_like(left, 0.25)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    audio = load_audio(path)
    np.testing.assert_array_equal(audio, (left + right) / np.float32(2))


def test_resampled_length_follows_librosa(tmp_path):
    path = tmp_path / "odd.wav"
    tone = 0.3 * np.sin(2 * np.pi * 300 * np.arange(44101) / 44100)
    sf.write(path, tone, 44100)
    audio = load_audio(path)
    assert len(audio) == 16001  # ceil(44101 * 16000 / 44100)
    # a 300 Hz tone stays a 300 Hz tone
    spectrum = np.abs(np.fft.rfft(audio[:16000]))
    assert np.argmax(spectrum) == 300


def test_other_target_rate(tmp_path, clip_path):
    audio = load_audio(clip_path, sr=8000, max_duration=2)
    assert audio.shape == (16000,)
    with pytest.raises(ValueError, match="sample rate"):
        load_audio(clip_path, sr=0)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(path, 0.1 * rng.standard_normal((40 * 22050, 2)), 22050)
    return path


def test_duration_cap_decodes_exactly_the_cap_and_warns(long_wav, caplog):
    with caplog.at_level(logging.WARNING, logger="albumcover.ear.audio"):
        capped = load_audio(long_wav, max_duration=10)
    assert capped.shape == (10 * SAMPLE_RATE,)
    assert "first 10.0 s of 40.0 s" in caplog.text
    whole = load_audio(long_wav, max_duration=None)
    assert whole.shape == (40 * SAMPLE_RATE,)
    # the same audio, but for the resampler's edge at the cut
    np.testing.assert_allclose(capped[:-200], whole[: 10 * SAMPLE_RATE - 200], atol=1e-5)


def test_duration_cap_through_ffmpeg(variants, caplog):
    with caplog.at_level(logging.WARNING, logger="albumcover.ear.audio"):
        capped = load_audio(variants["m4a"], max_duration=4)
    assert capped.shape == (4 * SAMPLE_RATE,)
    assert "the rest is ignored" in caplog.text


def test_no_warning_below_the_cap(variants, caplog):
    with caplog.at_level(logging.WARNING, logger="albumcover.ear.audio"):
        load_audio(variants["m4a"])
        load_audio(variants["wav"])
    assert caplog.text == ""
    assert DEFAULT_MAX_DURATION == 600.0


@pytest.mark.parametrize("cap", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_duration_cap(cap, clip_path):
    with pytest.raises(AudioError, match="max_duration must be a positive number"):
        load_audio(clip_path, max_duration=cap)


def test_ffmpeg_missing_is_explained(variants, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without ffmpeg
    with pytest.raises(AudioError, match="install ffmpeg") as err:
        load_audio(variants["m4a"])
    assert str(variants["m4a"]) in str(err.value)
    # what libsndfile decodes needs no ffmpeg
    assert load_audio(variants["flac"]).shape == (SECONDS * SAMPLE_RATE,)


def truncate(src, dst, fraction: float):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def corrupt(src, dst):
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) // 3
    data[start : start + 20000] = rng.integers(0, 256, 20000, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def silent_wav(path):
    sf.write(path, np.zeros((22050, 2)), 22050)
    return path


def video_without_audio(path):
    ffmpeg("-f", "lavfi", "-i", "testsrc=d=1:s=32x32", "-c:v", "mpeg4", str(path))
    return path


def png(path):
    from PIL import Image

    Image.new("RGB", (8, 8), "red").save(path, format="PNG")
    return path


BAD_FILES = {
    "missing": (lambda v, d: d / "nope.mp3", "file not found"),
    "directory": (lambda v, d: d, "is a directory"),
    "empty": (lambda v, d: write(d / "empty.mp3", b""), "file is empty"),
    "text": (
        lambda v, d: write(d / "song.mp3", b"not music\n" * 50),
        "not an audio file: the content is text",
    ),
    "png": (lambda v, d: png(d / "cover.mp3"), "not an audio file: the content is a PNG"),
    "random bytes": (
        lambda v, d: write(d / "noise.mp3", np.random.default_rng(1).bytes(5000)),
        "not a decodable audio file",
    ),
    "midi": (
        lambda v, d: write(d / "tune.mid", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00`"),
        "not a decodable audio file",
    ),
    "video only": (lambda v, d: video_without_audio(d / "video.mp4"), "no audio stream"),
    "silence": (lambda v, d: silent_wav(d / "silence.wav"), "digital silence"),
    "truncated mp3": (
        lambda v, d: truncate(v["stereo.mp3"], d / "half.mp3", 0.5),
        "corrupt or truncated stream",
    ),
    "mp3 header only": (
        lambda v, d: truncate(v["stereo.mp3"], d / "head.mp3", 0.01),
        "corrupt or truncated stream",
    ),
    "truncated flac": (
        lambda v, d: truncate(v["flac"], d / "half.flac", 0.5),
        "corrupt or truncated stream",
    ),
    "truncated wav": (lambda v, d: truncate(v["wav"], d / "half.wav", 0.5), "truncated file"),
    "truncated m4a": (
        lambda v, d: truncate(v["m4a"], d / "half.m4a", 0.5),
        "not a decodable audio file",
    ),
    "corrupt mp3": (lambda v, d: corrupt(v["stereo.mp3"], d / "bad.mp3"), "corrupt or truncated"),
    "corrupt flac": (lambda v, d: corrupt(v["flac"], d / "bad.flac"), "corrupt or truncated"),
    "corrupt m4a": (lambda v, d: corrupt(v["m4a"], d / "bad.m4a"), "corrupt or truncated"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_raises_audio_error(kind, variants, tmp_path):
    make, reason = BAD_FILES[kind]
    path = make(variants, tmp_path)
    with pytest.raises(AudioError, match=reason) as err:
        load_audio(path)
    assert str(path) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_quiet_music_is_not_silence(clip_audio, tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, clip_audio * 1e-3, SAMPLE_RATE, subtype="FLOAT")  # -60 dB
    assert load_audio(path).shape == clip_audio.shape


def test_streamed_wav_with_placeholder_size_is_fine(clip_path, tmp_path):
    # ffmpeg writing to a pipe cannot go back to fill in the sizes: 0xFFFFFFFF stays
    exe = shutil.which("ffmpeg") or pytest.fail("ffmpeg missing")
    cmd = [exe, "-v", "error", "-i", str(clip_path), "-t", "2", "-f", "wav", "-"]
    data = subprocess.run(cmd, check=True, capture_output=True).stdout
    path = tmp_path / "streamed.wav"
    path.write_bytes(data)
    assert load_audio(path).shape == (2 * SAMPLE_RATE,)
