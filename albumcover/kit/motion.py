"""The song as the kit hears it: decoded once (capped as the app caps songs), its most energetic
stretch, the beats in it, and the Canvas's zoom over one loop.

The motion is periodic in the loop's length L: every term is a function of the phase t / L, and
a beat's pulse is counted modulo L, so the frame after the last is the first one again.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ear.audio import DEFAULT_MAX_DURATION, load_audio_capped

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050  # Hz: librosa's default rate for beat tracking
HOP = 512  # samples between onset-strength frames (23 ms)
DRIFT_ZOOM = 0.06  # the slow zoom's depth: the picture is 6 % larger at mid-loop
PULSE_ZOOM = 0.025  # a full-strength beat enlarges the picture by 2.5 %: felt, not a jolt
ATTACK_S, DECAY_S = 0.08, 0.35  # a pulse rises over 80 ms and fades with a 350 ms time constant
SEARCH_MARGIN_S = 10.0  # beats are tracked this far around the stretch, for a steady tempo


@dataclass(frozen=True)
class Song:
    """A decoded song: ``signal`` mono float32 at ``sr`` Hz, shape (samples,); ``duration`` in
    seconds of what the kit uses; ``full_length`` the whole song's seconds when the cap cut it
    (-1.0 when unknown), else None."""

    path: Path
    signal: np.ndarray
    sr: int
    duration: float
    max_duration: float | None
    full_length: float | None = None

    @property
    def capped(self) -> bool:
        return self.full_length is not None

    def cap_note(self) -> str:
        """What the user is told about a cut song ("" when nothing was cut)."""
        if not self.capped:
            return ""
        of = f" of {_minutes(self.full_length)}" if self.full_length > 0 else ""
        cap = _minutes(self.max_duration)
        return (
            f"{self.path.name} is longer than {cap}: the kit uses its first {cap}{of} "
            "(the art track's audio stops there)"
        )


def _minutes(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    text = f"{rest // 60}:{rest % 60:02d}"
    return f"{hours}:{text.zfill(5)}" if hours else text


def read_song(path: str | os.PathLike, max_duration: float | None = DEFAULT_MAX_DURATION) -> Song:
    """Decode ``path`` for the kit (mono, :data:`SAMPLE_RATE` Hz), at most ``max_duration``
    seconds. Raises :class:`albumcover.ear.audio.AudioError` for anything that is not music (a
    picture, text, silence, a truncated file)."""
    signal, full_length = load_audio_capped(path, SAMPLE_RATE, max_duration)
    song = Song(
        Path(path), signal, SAMPLE_RATE, len(signal) / SAMPLE_RATE, max_duration, full_length
    )
    if song.capped:
        log.warning("%s", song.cap_note())
    return song


@dataclass(frozen=True)
class Beats:
    """The loop's beats: ``start`` (s) of the stretch in the song, ``times`` (s, in [0, loop))
    and ``strengths`` (0-1, onset strength relative to the stretch's strongest beat)."""

    start: float
    times: np.ndarray
    strengths: np.ndarray
    tempo: float  # beats per minute, 0 when none were found


def loudest_stretch(song: Song, seconds: float) -> float:
    """The start (s) of the ``seconds``-long stretch with the most energy (RMS^2 summed)."""
    import librosa

    if song.duration <= seconds:
        return 0.0
    rms = librosa.feature.rms(y=song.signal, hop_length=HOP)[0].astype(np.float64)
    energy = np.concatenate([[0.0], np.cumsum(rms**2)])
    width = max(1, int(round(seconds * song.sr / HOP)))
    last = len(rms) - width
    if last <= 0:
        return 0.0
    sums = energy[width : width + last + 1] - energy[: last + 1]
    return min(float(np.argmax(sums)) * HOP / song.sr, song.duration - seconds)


def find_beats(song: Song, seconds: float) -> Beats:
    """The beats of the song's most energetic ``seconds`` (librosa's tracker over the onset
    strength of that stretch and :data:`SEARCH_MARGIN_S` around it)."""
    import librosa

    start = loudest_stretch(song, seconds)
    lo = max(0.0, start - SEARCH_MARGIN_S)
    hi = min(song.duration, start + seconds + SEARCH_MARGIN_S)
    excerpt = song.signal[int(lo * song.sr) : int(hi * song.sr)]
    onset = librosa.onset.onset_strength(y=excerpt, sr=song.sr, hop_length=HOP)
    if len(onset) < 4 or not np.any(onset > 0):
        return Beats(start, np.zeros(0), np.zeros(0), 0.0)
    tempo, frames = librosa.beat.beat_track(onset_envelope=onset, sr=song.sr, hop_length=HOP)
    times = librosa.frames_to_time(frames, sr=song.sr, hop_length=HOP) + lo - start
    keep = (times >= 0) & (times < seconds)
    strengths = onset[frames[keep]].astype(np.float64)
    if strengths.size and strengths.max() > 0:
        strengths = strengths / strengths.max()
    bpm = float(np.atleast_1d(tempo)[0]) if np.size(tempo) else 0.0
    return Beats(start, times[keep], strengths, bpm)


def pulse(times: np.ndarray, beats: Beats, loop: float) -> np.ndarray:
    """Each frame's beat pulse (0-1) at ``times`` (s), shape like ``times``: a smooth rise over
    :data:`ATTACK_S` after each beat and an exponential fade, counted modulo ``loop`` so a beat
    near the end carries over into the start."""
    out = np.zeros_like(times, dtype=np.float64)
    for when, strength in zip(beats.times, beats.strengths, strict=True):
        since = np.mod(times - when, loop)
        rise = np.sin(0.5 * np.pi * np.minimum(since / ATTACK_S, 1.0)) ** 2
        out += strength * rise * np.exp(-np.maximum(since - ATTACK_S, 0.0) / DECAY_S)
    return np.minimum(out, 1.0)


def zoom_curve(times: np.ndarray, beats: Beats, loop: float) -> np.ndarray:
    """The picture's scale at ``times`` (s): 1 at the loop's start, a slow swell of
    :data:`DRIFT_ZOOM` peaking mid-loop, plus :data:`PULSE_ZOOM` x :func:`pulse`."""
    phase = 2.0 * math.pi * np.asarray(times, dtype=np.float64) / loop
    return 1.0 + DRIFT_ZOOM * 0.5 * (1.0 - np.cos(phase)) + PULSE_ZOOM * pulse(times, beats, loop)
