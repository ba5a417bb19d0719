"""`python -m albumcover kit`: a song's (or an album's) release kit in a folder; bad input named,
the rest still done."""

import pytest
from PIL import Image

from albumcover.cli.main import main
from tests.kit.media import cover_image, probe, stream, write_song
from tests.music_library import write_album
from tests.tiny_models import save_tiny_sd


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("song") / "Night Drive.wav", 4.0)


@pytest.fixture(scope="module")
def cover(tmp_path_factory):
    path = tmp_path_factory.mktemp("cover") / "cover.png"
    cover_image(256).save(path)
    return path


@pytest.fixture(scope="module")
def album(clip_path, tmp_path_factory):
    """Two mp3 tracks (one with a title tag) and a text file posing as a third."""
    return write_album(tmp_path_factory.mktemp("album"), clip_path, artist="Ana")


def test_one_song_four_files(song, cover, tmp_path, capsys):
    out = tmp_path / "kit"
    argv = ["kit", str(song), "--cover", str(cover), "--title", "Night Drive", "--artist", "Ana"]
    argv += ["--date", "Out 1 May 2026", "--out", str(out), "--canvas-seconds", "3"]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "Night Drive-art-track.mp4",
        "Night Drive-canvas.mp4",
        "Night Drive-post.jpg",
        "Night Drive-story.jpg",
    ]
    printed = capsys.readouterr().out
    assert all(f"wrote {out / name}" in printed for name in names)
    canvas = probe(out / "Night Drive-canvas.mp4")
    assert float(canvas["format"]["duration"]) == pytest.approx(3.0, abs=0.05)
    assert stream(canvas, "audio") is None
    art = probe(out / "Night Drive-art-track.mp4")
    assert float(stream(art, "audio")["duration"]) == pytest.approx(4.0, abs=0.05)


def test_only_and_the_cap(song, cover, tmp_path, capsys):
    argv = ["kit", str(song), "--cover", str(cover), "--out", str(tmp_path)]
    assert main([*argv, "--only", "video", "--max-seconds", "3"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["Night Drive-art-track.mp4"]
    err = capsys.readouterr().err
    assert "warning: Night Drive.wav is longer than 0:03: the kit uses its first 0:03" in err
    audio = stream(probe(tmp_path / "Night Drive-art-track.mp4"), "audio")
    assert float(audio["duration"]) == pytest.approx(3.0, abs=0.05)
    assert main([*argv, "--only", "social"]) == 0
    assert len(list(tmp_path.iterdir())) == 3


def test_an_album_shares_its_cover_and_names_the_broken_track(album, cover, tmp_path, capsys):
    argv = ["kit", str(album), "--cover", str(cover), "--out", str(tmp_path), "--only", "social"]
    assert main(argv) == 1  # the broken track failed, the others were still done
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "01 - Night Drive-post.jpg",
        "01 - Night Drive-story.jpg",
        "02_Slow Lights-post.jpg",
        "02_Slow Lights-story.jpg",
    ]
    assert "03 - Broken.mp3: not an audio file: the content is text" in capsys.readouterr().err
    assert main([*argv[:-2], "--only", "video,canvas", "--canvas-seconds", "3"]) == 1
    assert (tmp_path / "02_Slow Lights-canvas.mp4").is_file()
    assert not (tmp_path / "03 - Broken-canvas.mp4").exists()


def test_without_a_cover_one_is_painted(song, tmp_path, capsys):
    model = save_tiny_sd(tmp_path / "sd")
    argv = ["kit", str(song), "--model", str(model), "--steps", "1", "--size", "64"]
    argv += ["--seed", "3", "--category", "jazz", "--device", "cpu", "--only", "social"]
    assert main([*argv, "--out", str(tmp_path / "kit"), "--title", "Night Drive"]) == 0
    names = sorted(p.name for p in (tmp_path / "kit").iterdir())
    assert names == ["Night Drive-cover.png", "Night Drive-post.jpg", "Night Drive-story.jpg"]
    assert "cover album of jazz song, titled Night Drive" in capsys.readouterr().out
    with Image.open(tmp_path / "kit" / "Night Drive-post.jpg") as post:
        assert post.size == (1080, 1080)


def test_an_album_without_a_cover_paints_one_for_all(album, tmp_path, capsys):
    model = save_tiny_sd(tmp_path / "sd")
    argv = ["kit", str(album), "--model", str(model), "--steps", "1", "--size", "64"]
    argv += ["--seed", "3", "--category", "jazz", "--device", "cpu", "--only", "social"]
    assert main([*argv, "--out", str(tmp_path / "kit")]) == 1  # the broken track
    names = sorted(p.name for p in (tmp_path / "kit").iterdir())
    assert [n for n in names if n.endswith("-cover.png")] == [f"{album.name}-cover.png"]
    assert len(names) == 5  # one cover, a post and a story for each of the two songs
    out = capsys.readouterr().out
    assert out.count("cover album of jazz song, titled") == 1  # painted once, for the album
    assert f"titled {album.name}" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cover", "{fake}"], "cover fake.png: not a readable image"),
        (["--cover", "{tiny}"], "16x16 pixels; at least 64"),
        (["--cover", "{wide}"], "600x300 pixels; it must be square"),
        (["--cover", "{cover}", "--only", "gif"], "kit items must be some of video, canvas"),
        (["--cover", "{cover}", "--title", "bell\x07"], "--title contains the control character"),
        (["--cover", "{cover}", "--date", "x" * 300], "--date is 300 characters long"),
        (["--cover", "{cover}", "--out", "{file}"], "--out"),
    ],
)
def test_usage_errors_exit_2_before_any_work(song, cover, tmp_path, extra, message, capsys):
    files = dict(
        fake=tmp_path / "fake.png",
        tiny=tmp_path / "tiny.png",
        wide=tmp_path / "wide.png",
        cover=cover,
        file=tmp_path / "a file",
    )
    files["fake"].write_text("not a picture")
    Image.new("RGB", (16, 16)).save(files["tiny"])
    Image.new("RGB", (600, 300)).save(files["wide"])
    files["file"].write_text("")
    argv = ["kit", str(song), "--out", str(tmp_path / "kit")]
    assert main(argv + [e.format(**files) for e in extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("albumcover kit: error: ") and message in err
    assert not (tmp_path / "kit").exists()


@pytest.mark.parametrize(
    "extra", [["--canvas-seconds", "9"], ["--canvas-width", "900"], ["--max-seconds", "nan"]]
)
def test_bad_flags_are_argparse_errors(song, extra, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["kit", str(song), *extra])
    assert exit_.value.code == 2
