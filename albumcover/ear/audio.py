"""Decode a song to the 16 kHz mono float32 signal Musicnn was trained on.

Matches the original Musicnn's ``librosa.load(path, sr=16000)`` (librosa 0.11): decode with
libsndfile where it can (wav, flac, ogg/vorbis, opus, mp3), average the channels, resample with
soxr "HQ" and fix the length to ``ceil(n * 16000 / sr)``. What libsndfile cannot read (m4a/aac,
wma, webm, ...) is decoded by the ``ffmpeg`` program, which agrees with libsndfile's mp3 decoder
to ~3e-6; so are mp3s without a Xing/Info header, whose end libsndfile silently drops.
librosa itself is not imported: it pulls in scipy and numba (~2 s), which would dominate tagging
a song in a fresh process.

Broken files fail loudly rather than tagging a fragment: a stream that decodes to less than its
header declares, or that the decoder reports errors in, raises AudioError.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
DEFAULT_MAX_DURATION = 600.0  # seconds; longer songs are cut (with a warning), never loaded whole
# File names taken as songs when walking a folder (album CLI, dataset builder).
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".opus", ".oga", ".m4a", ".mp4", ".aac")

# A peak below one 16-bit step (~ -90 dBFS) is digital silence: there is nothing to tag.
SILENCE_PEAK = 2.0**-15
# Allowed shortfall between the frames a header declares and the frames that decode.
_MISSING_TOLERANCE_S = 0.1
_BLOCK_FRAMES = 1 << 18  # decode in blocks so a stereo song never sits in memory twice
_SNIFF_BYTES = 4096
# libsndfile's log line for a WAV data chunk whose size disagrees with the file
_WAV_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# sizes streaming writers (ffmpeg to a pipe, recorders) put in a header they cannot rewrite
_WAV_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)

log = logging.getLogger(__name__)

# signatures of common files that are certainly not audio -> what they are
_NOT_AUDIO = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x7fELF", "an executable"),
)


class AudioError(ValueError):
    """A file that cannot be decoded to music: the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_audio(
    path: str | os.PathLike,
    sr: int = SAMPLE_RATE,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> np.ndarray:
    """Decode an audio file to a mono float32 signal at ``sr`` Hz, shape (samples,).

    At most ``max_duration`` seconds (from the start) are decoded; the rest of a longer file is
    ignored with a logged warning. ``None`` lifts the cap. Raises AudioError for a missing,
    empty, non-audio, truncated, corrupt, unsupported or digitally silent file.
    """
    return load_audio_capped(path, sr, max_duration)[0]


def load_audio_capped(
    path: str | os.PathLike,
    sr: int = SAMPLE_RATE,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> tuple[np.ndarray, float | None]:
    """:func:`load_audio`, also telling whether the cap cut the song, to say so to the user.

    Returns (signal, full length): the full length in seconds of a song longer than
    ``max_duration`` (-1.0 when the file does not declare it), None when all of it was decoded.
    """
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise ValueError(f"sample rate must be a positive integer, got {sr!r}")
    path = Path(path).expanduser()
    if max_duration is not None and not (
        isinstance(max_duration, numbers.Real)
        and not isinstance(max_duration, bool)
        and math.isfinite(max_duration)
        and max_duration > 0
    ):
        raise AudioError(
            path, f"max_duration must be a positive number of seconds, got {max_duration!r}"
        )
    _check_file(path)

    mono, native_sr, cut = _decode(path, max_duration)
    if mono.size == 0:
        raise AudioError(path, "no audio samples could be decoded")
    if cut is not None:
        log.warning(
            "%s: decoding only the first %.1f s of %s; the rest is ignored (max_duration)",
            path,
            max_duration,
            f"{cut:.1f} s" if cut > 0 else "a longer file",
        )
    peak = float(np.max(np.abs(mono)))
    if not math.isfinite(peak):
        raise AudioError(path, "decoded samples are not finite (corrupt stream)")
    if peak < SILENCE_PEAK:
        raise AudioError(path, f"the audio is digital silence (peak {peak:.2g}); nothing to tag")

    audio = _resample(mono, native_sr, sr)
    if max_duration is not None:
        audio = audio[: int(max_duration * sr)]
    return audio, cut


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise AudioError(path, f"cannot read file ({e.strerror or e})") from e
    if not head:
        raise AudioError(path, "file is empty")
    what = _sniff_non_audio(head)
    if what:
        raise AudioError(path, f"not an audio file: the content is {what}")


def _sniff_non_audio(head: bytes) -> str | None:
    """What a file certainly is when it is not audio, from its first bytes; None if unsure."""
    for magic, what in _NOT_AUDIO:
        if head.startswith(magic):
            return what
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if b"\x00" in head:
        return None  # binary: let the decoders judge
    for cut in range(4):  # the 4 KiB window may split a multi-byte UTF-8 character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    printable = sum(c.isprintable() or c in "\t\n\r" for c in text)
    return "text" if printable >= 0.95 * max(len(text), 1) else None


def _decode(path: Path, max_duration: float | None) -> tuple[np.ndarray, int, float | None]:
    """(mono float32 at the native rate, native rate, total seconds if the cap cut it else None).

    The total is -1 when the file is known to be longer but not by how much.
    """
    import soundfile as sf

    try:
        sound = sf.SoundFile(path)
    except sf.LibsndfileError as e:
        # Not a libsndfile format (m4a, aac, wma, ...) or one it refuses: ffmpeg is more tolerant.
        return _decode_ffmpeg(path, max_duration, previous=f"libsndfile: {e.error_string}")
    with sound:
        if sound.format == "MP3" and not _has_mp3_length_header(path):
            # Without a Xing/Info/VBRI header libsndfile *estimates* an mp3's length from its
            # bitrate and stops reading there, silently dropping the end of VBR files.
            sound.close()
            return _decode_ffmpeg(path, max_duration)
        return _read_soundfile(path, sound, max_duration)


def _read_soundfile(path: Path, sound, max_duration: float | None):
    import soundfile as sf

    rate, declared = sound.samplerate, sound.frames
    if rate <= 0 or sound.channels <= 0:
        raise AudioError(path, f"invalid stream (rate {rate} Hz, {sound.channels} channels)")
    wanted = declared if max_duration is None else min(declared, int(max_duration * rate))
    parts, done = [], 0  # not preallocated: a broken header may declare any length
    try:
        while done < wanted:
            block = sound.read(min(_BLOCK_FRAMES, wanted - done), dtype="float32", always_2d=True)
            if len(block) == 0:
                break
            parts.append(_to_mono(block))
            done += len(block)
    except sf.LibsndfileError as e:
        raise AudioError(
            path, f"corrupt or truncated stream at {done / rate:.1f} s ({e.error_string})"
        ) from e
    if wanted - done > _MISSING_TOLERANCE_S * rate:
        raise AudioError(
            path,
            f"corrupt or truncated stream: the header declares {declared / rate:.1f} s "
            f"but decoding stopped at {done / rate:.1f} s",
        )
    short = _WAV_SIZE_MISMATCH.search(sound.extra_info)
    if short and int(short[1]) not in _WAV_STREAMING_SIZES and int(short[1]) > int(short[2]):
        # libsndfile silently reads a WAV cut short up to where it ends
        held = declared / rate
        raise AudioError(
            path,
            f"truncated file: the header declares {held * int(short[1]) / int(short[2]):.1f} s"
            f" but the file holds {held:.1f} s",
        )
    cut = declared / rate if wanted < declared else None
    return (np.concatenate(parts) if parts else np.empty(0, np.float32)), rate, cut


def _has_mp3_length_header(path: Path) -> bool:
    """Whether an mp3's first frame carries a Xing/Info/VBRI header (an exact frame count)."""
    with open(path, "rb") as f:
        head = f.read(10)
        start = 0
        if head[:3] == b"ID3" and len(head) == 10:
            size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7
            size |= head[9] & 0x7F
            start = 10 + size + (10 if head[5] & 0x10 else 0)  # + footer
        f.seek(start)
        data = f.read(4096)
    for i in range(len(data) - 1):  # the first frame sync after the tag
        if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0:
            frame = data[i : i + 200]
            return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))
    return False


def _decode_ffmpeg(path: Path, max_duration: float | None, previous: str = ""):
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        fmt = path.suffix.lstrip(".") or "this format"
        raise AudioError(
            path,
            f"decoding {fmt} needs the ffmpeg program, which was not found on PATH; "
            "install ffmpeg (e.g. `apt install ffmpeg`, `brew install ffmpeg`)"
            + (f" [{previous}]" if previous else ""),
        )
    # "level" tags each line, so one run gives both the header summary and the decode errors
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+info"]
    cmd += ["-i", f"file:{path.resolve()}"]  # file: so no name is taken for a URL or an option
    cmd += ["-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
    if max_duration is not None:
        # half a second more than the cap tells whether the file goes on past it
        cmd += ["-t", f"{max_duration + 0.5:.6f}"]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "-"]
    # stderr goes to a file: a corrupt stream can log more than a pipe buffer holds
    with tempfile.TemporaryFile() as log_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log_file)
        try:
            mono, rate, frames = _read_ffmpeg_wav(proc.stdout)
            failure = None
        except (ValueError, OSError) as e:
            proc.kill()
            failure = e
        finally:
            proc.stdout.close()
        code = proc.wait()
        log_file.seek(0)
        report = _FfmpegReport(log_file.read().decode("utf-8", "replace"))
    if report.no_audio_stream:
        raise AudioError(path, "the file has no audio stream")
    if failure is not None or code != 0:
        reason = report.errors_summary() or str(failure or f"exit status {code}")
        raise AudioError(path, f"not a decodable audio file (ffmpeg: {reason})") from failure
    if report.errors:
        raise AudioError(path, f"corrupt or truncated stream (ffmpeg: {report.errors_summary()})")
    decoded = frames / rate
    expected = report.duration
    if expected is not None and max_duration is not None:
        expected = min(expected, max_duration)
    if expected is not None and expected - decoded > max(0.25, 0.01 * expected):
        raise AudioError(
            path,
            f"corrupt or truncated stream: the header declares {expected:.1f} s "
            f"but decoding stopped at {decoded:.1f} s",
        )
    cut = None
    if max_duration is not None and frames > int(max_duration * rate):
        cut = report.duration or -1.0
        mono = mono[: int(max_duration * rate)]
    return mono, rate, cut


class _FfmpegReport:
    """What ffmpeg's level-tagged log says: errors, and the declared duration if trustworthy."""

    _DURATION = re.compile(r"^\[info\]\s+Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.MULTILINE)
    _ERROR = re.compile(r"\[(?:error|fatal|panic)\] ")

    def __init__(self, text: str):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        self.errors = [self._ERROR.sub("", line) for line in lines if self._ERROR.search(line)]
        self.no_audio_stream = any("matches no streams" in line for line in self.errors)
        # a duration estimated from the bitrate, or one a video track sets, may not be the
        # audio's: only an audio length the container declares is held against the decode
        has_video = any("Video:" in line and "attached pic" not in line for line in lines)
        estimated = "Estimating duration from bitrate" in text
        match = self._DURATION.search(text)
        self.duration = None
        if match and not has_video and not estimated:
            hours, minutes, seconds = match.groups()
            self.duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)

    def errors_summary(self) -> str:
        if not self.errors:
            return ""
        more = len(self.errors) - 1
        return self.errors[0] + (f" (+{more} more errors)" if more else "")


def _read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError("ffmpeg produced no audio")
    return data


def _read_ffmpeg_wav(stream) -> tuple[np.ndarray, int, int]:
    """Read ffmpeg's streamed float32 WAV: (mono at the native rate, rate, frames read)."""
    riff = _read_exact(stream, 12)
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise ValueError("ffmpeg did not produce a WAV stream")
    channels = rate = 0
    while True:
        chunk_id, size = struct.unpack("<4sI", _read_exact(stream, 8))
        if chunk_id == b"data":
            break
        body = _read_exact(stream, size + (size & 1))
        if chunk_id == b"fmt ":
            channels, rate = struct.unpack("<HI", body[2:8])
    if channels <= 0 or rate <= 0:
        raise ValueError("ffmpeg's WAV stream has no valid format chunk")
    # ffmpeg streams with an unknown data size; read to the end, downmixing as it comes
    # (ffmpeg's -t bounds it to the cap)
    parts, frames = [], 0
    frame_bytes = 4 * channels
    pending = b""
    while True:
        data = stream.read(_BLOCK_FRAMES * frame_bytes)
        if not data:
            break
        data = pending + data
        usable = len(data) - len(data) % frame_bytes
        pending = data[usable:]
        block = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, channels)
        parts.append(_to_mono(block))
        frames += len(block)
    mono = np.concatenate(parts) if parts else np.empty(0, np.float32)
    return mono.astype(np.float32, copy=False), rate, frames


def _to_mono(block: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): librosa.to_mono's float32 mean of the channels.

    Summed column by column: the same float32 result as ``mean(axis=1)``, which numpy computes
    several times slower over a 2-wide axis.
    """
    mono = block[:, 0].astype(np.float32, copy=True)
    for channel in range(1, block.shape[1]):
        mono += block[:, channel]
    if block.shape[1] > 1:
        mono /= np.float32(block.shape[1])
    return mono


def _resample(mono: np.ndarray, orig_sr: int, sr: int) -> np.ndarray:
    """soxr "HQ" resampling fixed to ceil(n * sr / orig_sr) samples, as librosa.resample does."""
    if orig_sr == sr:
        return np.ascontiguousarray(mono, dtype=np.float32)
    import soxr

    out = soxr.resample(mono, orig_sr, sr, quality="soxr_hq")
    n = int(math.ceil(len(mono) * sr / orig_sr))
    if len(out) < n:
        out = np.pad(out, (0, n - len(out)))
    return np.ascontiguousarray(out[:n], dtype=np.float32)
