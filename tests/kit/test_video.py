"""The art track: 1920 x 1080 H.264 + AAC-LC 48 kHz, faststart, closed GOP, the song's whole
audio, the cover centred over its backdrop; checked with ffprobe and ffmpeg's own decode."""

import subprocess
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from albumcover.ear.audio import AudioError
from albumcover.kit.ffmpeg import KitError
from albumcover.kit.motion import read_song
from albumcover.kit.video import COVER_SIDE, art_track_frame, render_art_track
from albumcover.release.lettering import LetteringError
from tests.kit.media import atoms, cover_image, frames, probe, stream, write_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return read_song(write_song(tmp_path_factory.mktemp("song") / "Night Drive.wav", 7.3))


def test_art_track_follows_youtubes_recommendations(song, tmp_path):
    out = tmp_path / "art.mp4"
    done = []
    track = render_art_track(
        song,
        cover_image(),
        out,
        title="Night Drive",
        artist="Ana",
        progress=lambda *p: done.append(p),
    )
    info = probe(out)
    video, audio = stream(info, "video"), stream(info, "audio")
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("h264", "High", "yuv420p")
    assert (video["width"], video["height"]) == (1920, 1080)
    assert video["r_frame_rate"] == "2/1" and track.fps == 2
    assert int(video["nb_frames"]) == track.frames == 15  # ceil(7.3 s x 2)
    assert (audio["codec_name"], audio["profile"], audio["sample_rate"]) == ("aac", "LC", "48000")
    # the song's whole audio, and a picture for all of it: each within one video frame
    frame = 1 / track.fps
    length = sf.info(song.path).duration  # the file's own length, not our decode's
    assert abs(float(audio["duration"]) - length) < min(frame, 0.05)
    assert abs(float(video["duration"]) - float(audio["duration"])) < frame
    assert info["format"]["format_name"].startswith("mov,mp4")
    top = atoms(out)
    assert top.index("moov") < top.index("mdat")  # faststart
    assert b"open_gop=0" in out.read_bytes()  # x264's settings, written into the stream
    assert done[-1] == (15, 15)


def test_the_cover_is_centred_over_a_darker_backdrop(song, tmp_path):
    out = tmp_path / "art.mp4"
    render_art_track(song, cover_image(), out)
    first = frames(out, 1920, 1080)[0].astype(float)
    expected = np.asarray(art_track_frame(cover_image()), float)
    assert np.abs(first - expected).mean() < 3  # what we drew is what plays
    edge = (1080 - COVER_SIDE) // 2
    cover = np.asarray(cover_image().resize((COVER_SIDE, COVER_SIDE)), float)
    shown = first[edge : edge + COVER_SIDE, (1920 - COVER_SIDE) // 2 :][:, :COVER_SIDE]
    assert np.abs(shown - cover).mean() < 4
    assert first[:, :400].mean() < 0.6 * cover.mean()  # the backdrop is darkened


def test_lettering_is_set_on_the_cover(song):
    plain = np.asarray(art_track_frame(cover_image()), float)
    lettered = np.asarray(art_track_frame(cover_image(), "Night Drive", "Ana"), float)
    changed = np.abs(plain - lettered).sum(-1) > 30
    ys, xs = np.nonzero(changed)
    edge_y, edge_x = (1080 - COVER_SIDE) // 2, (1920 - COVER_SIDE) // 2
    assert changed.sum() > 500
    assert ys.min() >= edge_y and ys.max() < edge_y + COVER_SIDE  # on the cover only
    assert xs.min() >= edge_x and xs.max() < edge_x + COVER_SIDE


def test_an_mp3_keeps_its_whole_audio(clip_path, tmp_path):
    mp3 = tmp_path / "clip.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-t", "4.5", "-i", str(clip_path), str(mp3)],
        check=True,
    )
    song = read_song(mp3)
    out = tmp_path / "art.mp4"
    render_art_track(song, cover_image(), out)
    audio = stream(probe(out), "audio")
    assert abs(float(audio["duration"]) - song.duration) < 0.05
    assert audio["channels"] == 2


def test_a_song_over_the_cap_is_cut_with_a_note(tmp_path, caplog):
    long = write_song(tmp_path / "long.wav", 9.0)
    song = read_song(long, max_duration=4)
    assert song.capped and song.duration == pytest.approx(4.0, abs=1e-3)
    assert song.cap_note() == (
        "long.wav is longer than 0:04: the kit uses its first 0:04 of 0:09 "
        "(the art track's audio stops there)"
    )
    out = tmp_path / "art.mp4"
    render_art_track(song, cover_image(), out)
    info = probe(out)
    assert abs(float(stream(info, "audio")["duration"]) - 4.0) < 0.05
    assert float(info["format"]["duration"]) < 4.5


def test_a_two_hour_song_is_capped_at_the_apps_default(tmp_path):
    """Two hours (1 kHz 8-bit: 7 MB) decode only to the cap, and the note says how long it was."""
    path = tmp_path / "two hours.wav"
    t = np.arange(7200 * 1000) / 1000
    sf.write(path, (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), 1000, subtype="PCM_U8")
    song = read_song(path)
    assert song.duration == pytest.approx(600.0, abs=0.01)
    assert "longer than 10:00" in song.cap_note() and "of 2:00:00" in song.cap_note()


def test_memory_does_not_grow_with_the_songs_length(tmp_path):
    peaks = []
    for seconds in (2.0, 16.0):
        song = read_song(write_song(tmp_path / f"s{seconds}.wav", seconds))
        tracemalloc.start()
        render_art_track(song, cover_image(), tmp_path / f"a{seconds}.mp4")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] + 1_000_000, peaks  # 8x the frames, the same peak


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(title=5), LetteringError, "title must be text, got int"),
        (dict(artist="bell\x07"), LetteringError, "control character U\\+0007"),
        (dict(title="t" * 500), LetteringError, "title is 500 characters long"),
        (dict(cover=Image.new("RGB", (16, 16))), KitError, "16x16 pixels; at least 64"),
        (dict(cover=Image.new("RGB", (800, 400))), KitError, "800x400 pixels; it must be square"),
        (dict(cover=Image.new("RGB", (6400, 6400))), KitError, "at most 6000x6000"),
        (dict(cover="cover.png"), KitError, "cover must be an image, got str"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_written(song, tmp_path, kwargs, error, message):
    cover = kwargs.pop("cover", cover_image(128))
    with pytest.raises(error, match=message):
        render_art_track(song, cover, tmp_path / "art.mp4", **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an audio file: the content is a PNG image"),
        (b"just some words\n" * 50, "not an audio file: the content is text"),
        (b"", "file is empty"),
        (bytes(range(256)) * 40, "not a decodable audio file"),
    ],
)
def test_non_audio_songs_are_refused(tmp_path, content, message):
    path = tmp_path / "song.mp3"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        read_song(path)


def test_a_failed_encode_leaves_nothing(song, tmp_path):
    """ffmpeg refusing (here: the song vanished after decoding) is a KitError, no file."""
    gone = tmp_path / "gone.wav"
    gone.write_bytes(song.path.read_bytes())
    decoded = read_song(gone)
    gone.unlink()
    with pytest.raises(KitError, match="ffmpeg could not write art.mp4"):
        render_art_track(decoded, cover_image(), tmp_path / "art.mp4")
    assert list(tmp_path.iterdir()) == []
