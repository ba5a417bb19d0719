"""``python -m albumcover cover ... --letter --embed``: the export, its check, and the cover
written into copies of the songs (or the originals with --in-place); one cover per album."""

import os
import shutil
import subprocess

import pytest
from PIL import Image

from albumcover.cli.main import main
from albumcover.images import read_image
from albumcover.release.check import check_cover
from albumcover.songfile.tags import read_front_cover, read_song_tags
from tests import hostile_images as hostile
from tests.covers_art import art
from tests.tiny_models import save_tiny_sd


def ffmpeg(clip, out, *extra):
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-t", "2", "-i", str(clip), *extra, str(out)],
        check=True,
    )
    return out


@pytest.fixture(scope="module")
def album_src(clip_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("album_src")
    meta = ["-metadata", "album=Night Drives", "-metadata", "artist=Ana"]
    ffmpeg(clip_path, folder / "01 Intro.mp3", *meta, "-metadata", "title=Intro")
    ffmpeg(clip_path, folder / "02 Lights.flac", *meta, "-metadata", "title=Lights")
    ffmpeg(clip_path, folder / "03 Rain.ogg", "-c:a", "libvorbis", *meta)
    return folder


@pytest.fixture
def album(album_src, tmp_path):
    return shutil.copytree(album_src, tmp_path / "Night Drives")


@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    path = tmp_path_factory.mktemp("art") / "art.png"
    art("photo", 512).save(path)
    return path


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_album_one_cover_embedded_into_every_track(album, painting, tmp_path, capsys):
    before = snapshot(album)
    out = tmp_path / "out"
    argv = ["cover", str(album), "--image", str(painting), "--letter", "--embed", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    export = out / "Night Drives.jpg"
    assert check_cover(export).passed and "PASS" in printed and "upscaler: lanczos" in printed
    assert b"Title: Night Drives\nArtist: Ana" in Image.open(export).info["comment"]
    cover = export.read_bytes()
    for name in before:
        assert read_front_cover(out / name) == cover
        assert read_song_tags(out / name).album == "Night Drives"  # other tags kept
    assert snapshot(album) == before  # the originals are untouched


def test_in_place_tags_the_originals(album, painting, tmp_path, capsys):
    argv = ["cover", str(album), "--image", str(painting), "--embed", "--in-place"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--format", "png"]) == 0
    export = (tmp_path / "out" / "Night Drives.png").read_bytes()
    for track in album.iterdir():
        assert read_front_cover(track) == export


def test_single_song_title_flags_and_size(album, painting, tmp_path, capsys):
    song = album / "01 Intro.mp3"
    argv = ["cover", str(song), "--image", str(painting), "--letter", "--title", "Intro"]
    argv += ["--artist", "Ana", "--layout", "bottom", "--font", "serif", "--export-size", "1400"]
    assert main([*argv, "--embed", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bottom layout, serif" in out and "warn: 1400 px is under the recommended" in out
    with Image.open(tmp_path / "01 Intro.jpg") as image:
        assert image.size == (1400, 1400)
    assert read_front_cover(tmp_path / "01 Intro.mp3") is not None


def test_bad_tracks_are_named_and_the_rest_still_done(album, painting, tmp_path, capsys):
    (album / "04 Broken.mp3").write_text("not audio")
    locked = album / "02 Lights.flac"
    os.chmod(locked, 0o444)
    before = snapshot(album)
    argv = ["cover", str(album), "--image", str(painting), "--embed", "--in-place"]
    assert main([*argv, "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "04 Broken.mp3" in err and "02 Lights.flac" in err and "read-only" in err
    assert "Traceback" not in err
    assert (album / "04 Broken.mp3").read_bytes() == before["04 Broken.mp3"]
    assert locked.read_bytes() == before["02 Lights.flac"]
    assert read_front_cover(album / "01 Intro.mp3") is not None


def test_out_into_the_songs_own_folder_needs_in_place(album, painting, capsys):
    song = album / "01 Intro.mp3"
    before = song.read_bytes()
    argv = ["cover", str(song), "--image", str(painting), "--embed", "--out", str(album)]
    assert main(argv) == 1
    assert "--in-place" in capsys.readouterr().err and song.read_bytes() == before


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--in-place"], "--in-place only goes with --embed"),
        (["--letter", "--color", "nope"], "color must be 'auto'"),
        (["--letter", "--prompt-only"], "--prompt-only paints nothing"),
        (["--image", "/nonexistent.png"], "--image /nonexistent.png: no such file"),
    ],
)
def test_usage_errors_exit_2(album, extra, message, capsys):
    assert main(["cover", str(album / "01 Intro.mp3"), *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra", [["--layout", "diagonal"], ["--font", "Comic"], ["--export-size", "100"]]
)
def test_bad_flags_are_argparse_errors(album, extra, capsys):
    with pytest.raises(SystemExit) as info:
        main(["cover", str(album), *extra])
    assert info.value.code == 2


def test_bad_pictures_and_text(album, painting, tmp_path, capsys):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (800, 400)).save(wide)
    argv = ["cover", str(album / "01 Intro.mp3"), "--image", str(wide), "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "800x400 pixels; it must be square" in capsys.readouterr().err
    words = tmp_path / "words.png"
    words.write_text("text")
    argv[3] = str(words)
    assert main(argv) == 1
    assert "not a readable image" in capsys.readouterr().err
    argv[3] = str(painting)
    assert main([*argv, "--letter", "--title", "t" * 10_000]) == 1
    assert "title is 10,000 characters long" in capsys.readouterr().err
    assert main([*argv, "--letter", "--title", "bell\x07"]) == 1
    assert "control character U+0007" in capsys.readouterr().err


def test_painted_and_lettered_end_to_end(album, tmp_path, capsys):
    """The real path: tag, write the prompt, paint with a tiny SD, letter, export, embed."""
    model = save_tiny_sd(tmp_path / "sd")
    song = album / "01 Intro.mp3"
    argv = ["cover", str(song), "--category", "jazz", "--model", str(model), "--n", "1"]
    argv += ["--steps", "1", "--size", "64", "--seed", "3", "--device", "cpu", "--letter"]
    argv += ["--embed", "--export-size", "640", "--out", str(tmp_path / "out")]
    assert main(argv) == 0, capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["01 Intro-3.png", "01 Intro.jpg", "01 Intro.mp3"]
    assert (
        b"Title: Intro\nArtist: Ana"
        in Image.open(tmp_path / "out" / "01 Intro.jpg").info["comment"]
    )


@pytest.mark.usefixtures("one_torch_thread")
def test_diffusion_upscaler_flag(album, tmp_path, capsys):
    from tests.release.test_export import save_tiny_upscaler

    model = save_tiny_upscaler(tmp_path / "x4")
    small = tmp_path / "small.png"
    art("photo", 64).save(small)
    song = album / "01 Intro.mp3"
    argv = ["cover", str(song), "--image", str(small), "--upscaler", str(model)]
    assert main([*argv, "--export-size", "640", "--out", str(tmp_path / "out")]) == 0
    assert f"upscaler: diffusion x4 ({model})" in capsys.readouterr().out
    with Image.open(tmp_path / "out" / "01 Intro.jpg") as image:
        assert image.size == (640, 640)
    argv[-1] = str(tmp_path / "nowhere")
    assert main([*argv, "--out", str(tmp_path / "out2")]) == 1
    assert "cannot load the upscaler" in capsys.readouterr().err


def test_album_without_an_album_tag_needs_title(clip_path, painting, tmp_path, capsys):
    folder = tmp_path / "untagged"
    folder.mkdir()
    ffmpeg(clip_path, folder / "01.mp3", "-map_metadata", "-1")
    argv = ["cover", str(folder), "--image", str(painting), "--letter", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "no album title in the tracks' tags; give it with --title" in capsys.readouterr().err
    assert main([*argv, "--title", "Demos", "--artist", "Ana"]) == 0
    assert b"Title: Demos\nArtist: Ana" in Image.open(tmp_path / "untagged.jpg").info["comment"]


def test_album_painted_once_and_embedded(album, tmp_path, capsys):
    """An album folder through the real path: one prompt (the album's), one painting, one
    export, embedded into every track."""
    model = save_tiny_sd(tmp_path / "sd")
    argv = ["cover", str(album), "--category", "jazz", "--model", str(model), "--n", "1"]
    argv += ["--steps", "1", "--size", "64", "--seed", "5", "--device", "cpu", "--letter"]
    argv += ["--embed", "--export-size", "640", "--out", str(tmp_path / "out")]
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count("titled Night Drives") == 1 and "by Ana" in out  # one album prompt
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "01 Intro.mp3",
        "02 Lights.flac",
        "03 Rain.ogg",
        "Night Drives-5.png",
        "Night Drives.jpg",
    ]
    cover = (tmp_path / "out" / "Night Drives.jpg").read_bytes()
    assert all(read_front_cover(tmp_path / "out" / n) == cover for n in names[:3])


def test_image_over_the_budget_or_broken_is_one_line_naming_it(album, tmp_path, capsys):
    song = album / "01 Intro.mp3"
    bomb = hostile.png_declaring(tmp_path / "bomb.png", 30000, 30000)
    argv = ["cover", str(song), "--out", str(tmp_path / "out"), "--image"]
    assert main([*argv, str(bomb)]) == 1
    err = capsys.readouterr().err
    assert f"--image {bomb} declares 900.0 megapixels, over the budget of 36 megapixels" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    big = hostile.transparent(tmp_path / "big.png", 700)  # 0.49 MP
    assert main([*argv, str(big), "--max-megapixels", "0.4"]) == 1
    assert "over the budget of 0.4 megapixels" in capsys.readouterr().err
    assert main([*argv, str(hostile.truncated_png(tmp_path / "cut.png"))]) == 1
    err = capsys.readouterr().err
    assert "cut.png: not a readable image (the PNG ends early: truncated)" in err
    assert not list((tmp_path / "out").glob("*.jpg"))


def test_check_fails_a_bomb_from_its_header(tmp_path, capsys):
    bomb = hostile.png_declaring(tmp_path / "bomb.png", 30000, 30000)
    big = hostile.png_declaring(tmp_path / "big.png", 7000, 7000)
    assert main(["check", str(bomb), str(big)]) == 1
    out = capsys.readouterr().out
    assert "bomb.png: FAIL" in out and "declares 900.0 megapixels" in out
    assert "big.png: FAIL (PNG 7000x7000" in out and "over the budget of 36 megapixels" in out
    assert main(["check", str(big), "--max-megapixels", "50"]) == 1  # now decoded: truncated
    assert "not a readable image" in capsys.readouterr().out


def test_tricky_files_are_released_as_the_library_decodes_them(album, tmp_path, capsys):
    song = album / "01 Intro.mp3"
    for name, path in hostile.write_tricky(tmp_path / "in").items():
        out = tmp_path / name.replace(" ", "-")
        argv = ["cover", str(song), "--image", str(path), "--export-size", "640"]
        assert main([*argv, "--format", "png", "--out", str(out)]) == 0, capsys.readouterr()
        with Image.open(out / "01 Intro.png") as exported:
            assert exported.tobytes() == read_image(path).tobytes(), name
