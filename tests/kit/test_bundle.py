"""make_kit: the four files of a song's kit in one folder, refusals before anything is written."""

import pytest

from albumcover.ear.audio import AudioError
from albumcover.kit.bundle import KIT_ITEMS, make_kit, parse_items
from albumcover.kit.ffmpeg import KitError
from albumcover.kit.motion import read_song
from albumcover.release.lettering import LetteringError
from tests.kit.media import cover_image, probe, stream, write_song


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("song") / "Night Drive.wav", 4.0)


def test_the_whole_kit(song, tmp_path):
    seen = set()
    kit = make_kit(
        song,
        cover_image(),
        tmp_path / "kit",
        title="Night Drive",
        artist="Ana",
        date_line="2026",
        canvas_seconds=3,
        progress=lambda item, done, total: seen.add((item, done == total)),
    )
    names = sorted(p.name for p in (tmp_path / "kit").iterdir())
    assert names == [
        "Night Drive-art-track.mp4",
        "Night Drive-canvas.mp4",
        "Night Drive-post.jpg",
        "Night Drive-story.jpg",
    ]
    assert [p.name for p in kit.paths()] == [
        "Night Drive-art-track.mp4",
        "Night Drive-canvas.mp4",
        "Night Drive-post.jpg",
        "Night Drive-story.jpg",
    ]
    assert {("video", True), ("canvas", True), ("social", True)} <= seen
    assert kit.notes == []
    assert stream(probe(kit.files["canvas"][0]), "audio") is None


def test_only_some_items_and_a_decoded_song(song, tmp_path):
    decoded = read_song(song, max_duration=3)
    kit = make_kit(decoded, cover_image(), tmp_path, stem="single", only="video")
    assert [p.name for p in tmp_path.iterdir()] == ["single-art-track.mp4"]
    assert kit.notes and "longer than 0:03" in kit.notes[0]
    # the social formats alone still want a song: a file that is not audio is refused
    words = tmp_path / "words.mp3"
    words.write_text("not audio")
    with pytest.raises(AudioError, match="words.mp3: not an audio file"):
        make_kit(words, cover_image(), tmp_path / "s", only=["social"])
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "only, expected",
    [(None, KIT_ITEMS), ("social,video", ("video", "social")), (["canvas"], ("canvas",))],
)
def test_parse_items(only, expected):
    assert parse_items(only) == expected


@pytest.mark.parametrize("only", ["", "video,gif", ["video", 3], ",", "Video"])
def test_unknown_items_are_refused(only):
    with pytest.raises(KitError, match="kit items must be some of video, canvas, social"):
        parse_items(only)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(title=["a"]), LetteringError, "title must be text"),
        (dict(date_line="\x00"), LetteringError, "date contains the control character U\\+0000"),
        (dict(canvas_seconds=10), KitError, "canvas seconds must be"),
        (dict(stem="../up"), KitError, "plain stem"),
        (dict(only="mp3"), KitError, "kit items"),
    ],
)
def test_refusals_write_nothing(song, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_kit(song, cover_image(128), tmp_path / "kit", **kwargs)
    assert not (tmp_path / "kit").exists()


def test_a_non_audio_song_writes_nothing(tmp_path):
    picture = tmp_path / "cover.mp3"
    cover_image(64).save(picture, format="PNG")
    with pytest.raises(AudioError, match="not an audio file: the content is a PNG image"):
        make_kit(picture, cover_image(128), tmp_path / "kit")
    assert not (tmp_path / "kit").exists()
