"""The Canvas: 9:16, 24-30 fps, 3-8 s, no audio, under 10 MB, a seamless loop that pulses on the
beats of the song's loudest stretch, never flashing; the motion's pieces on their own."""

import numpy as np
import pytest
import soundfile as sf

from albumcover.kit.canvas import (
    MAX_BYTES,
    canvas_frames,
    check_canvas_settings,
    render_canvas,
)
from albumcover.kit.ffmpeg import KitError
from albumcover.kit.motion import Beats, find_beats, loudest_stretch, pulse, read_song, zoom_curve
from tests.kit.media import atoms, cover_image, frames, probe, stream, write_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """20 s at 120 bpm, quiet for the first 9 s: the loudest 8 s start at 9 s or later."""
    path = tmp_path_factory.mktemp("song") / "pulse.wav"
    return read_song(write_song(path, 20.0, bpm=120, quiet_until=9.0))


@pytest.fixture(scope="module")
def canvas(song, tmp_path_factory):
    out = tmp_path_factory.mktemp("canvas") / "canvas.mp4"
    return render_canvas(song, cover_image(), out)  # the defaults: 8 s, 720 x 1280, 24 fps


def test_canvas_follows_spotifys_guidelines(canvas):
    info = probe(canvas.path)
    video = stream(info, "video")
    assert stream(info, "audio") is None  # no audio
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (720, 1280)  # 9:16
    assert video["r_frame_rate"] == "24/1" and int(video["nb_frames"]) == 192
    assert float(info["format"]["duration"]) == pytest.approx(8.0, abs=1 / 24)
    assert int(info["format"]["size"]) < MAX_BYTES
    top = atoms(canvas.path)
    assert top.index("moov") < top.index("mdat")


def test_the_loop_is_seamless_and_never_flashes(canvas):
    video = frames(canvas.path, 90, 160).astype(float)
    steps = np.abs(np.diff(video, axis=0)).mean(axis=(1, 2, 3))  # frame k -> k + 1
    seam = np.abs(video[0] - video[-1]).mean()  # the last frame -> the first, as it loops
    assert steps.max() > 0.2  # it moves
    assert seam <= 1.5 * np.percentile(steps, 90), (seam, steps)
    brightness = video.mean(axis=(1, 2, 3))
    assert np.abs(np.diff(brightness)).max() < 2.0  # no flashing: brightness barely moves
    assert np.abs(brightness[0] - brightness[-1]) < 2.0


def test_pulses_follow_the_beats_of_the_loudest_stretch(song, canvas):
    assert 8.5 <= canvas.beats.start <= 12.0  # the quiet first 9 s are passed over
    assert 100 <= canvas.beats.tempo <= 140  # 120 bpm (or near)
    assert 12 <= len(canvas.beats.times) <= 18  # 16 beats in 8 s
    gaps = np.diff(canvas.beats.times)
    assert np.median(gaps) == pytest.approx(0.5, abs=0.05)
    # the picture swells a little just after each beat
    times = np.arange(192) / 24
    zooms = zoom_curve(times, canvas.beats, 8.0)
    beat = canvas.beats.times[len(canvas.beats.times) // 2]
    after = zooms[int(np.ceil((beat + 0.1) * 24))]
    before = zooms[int(np.floor((beat - 0.02) * 24))]
    assert after - before > 0.01


def test_motion_is_periodic_in_the_loop():
    beats = Beats(0.0, np.array([0.1, 2.9, 4.0]), np.array([1.0, 0.5, 0.8]), 90.0)
    times = np.linspace(0, 3, 50)
    assert np.allclose(zoom_curve(times, beats, 3.0), zoom_curve(times + 3.0, beats, 3.0))
    # a beat near the end carries over into the start
    assert pulse(np.array([0.05]), Beats(0.0, np.array([2.95]), np.array([1.0]), 0.0), 3.0) > 0.3
    assert zoom_curve(np.array([0.0]), Beats(0, np.zeros(0), np.zeros(0), 0), 3.0)[0] == 1.0


def test_first_frame_follows_the_last(song):
    beats = find_beats(song, 3)
    loop = np.array(list(canvas_frames(cover_image(256), beats, 3, (72, 128), 24)), float)
    assert len(loop) == 72
    steps = np.abs(np.diff(loop, axis=0)).mean(axis=(1, 2, 3))
    assert np.abs(loop[-1] - loop[0]).mean() < 2 * steps.mean()  # the motion closes on itself


def test_a_short_quiet_song_still_loops(tmp_path):
    """A song shorter than the loop, without beats: the slow drift alone."""
    path = tmp_path / "hum.wav"
    t = np.arange(2 * 22050) / 22050
    sf.write(path, 0.2 * np.sin(2 * np.pi * 110 * t), 22050)
    song = read_song(path)
    assert loudest_stretch(song, 3) == 0.0
    out = render_canvas(song, cover_image(128), tmp_path / "c.mp4", seconds=3, fps=30)
    video = stream(probe(out.path), "video")
    assert video["r_frame_rate"] == "30/1" and int(video["nb_frames"]) == 90


def test_large_canvas(song, tmp_path):
    out = render_canvas(song, cover_image(), tmp_path / "big.mp4", seconds=3, width=1080)
    video = stream(probe(out.path), "video")
    assert (video["width"], video["height"]) == (1080, 1920)


@pytest.mark.parametrize(
    "settings, message",
    [
        ((9, 720, 24), "canvas seconds must be a whole number from 3 to 8; got 9"),
        ((2, 720, 24), "canvas seconds must be a whole number from 3 to 8; got 2"),
        ((8.5, 720, 24), "got 8.5"),
        ((True, 720, 24), "got True"),
        (("8", 720, 24), "got '8'"),
        ((8, 900, 24), "canvas width must be 720 or 1080; got 900"),
        ((8, 720, 60), "canvas fps must be from 24 to 30; got 60"),
    ],
)
def test_settings_outside_spotifys_range_are_refused(song, tmp_path, settings, message):
    with pytest.raises(KitError, match=message):
        check_canvas_settings(*settings)
    seconds, width, fps = settings
    with pytest.raises(KitError, match=message):
        render_canvas(
            song, cover_image(128), tmp_path / "c.mp4", seconds=seconds, width=width, fps=fps
        )
    assert list(tmp_path.iterdir()) == []
