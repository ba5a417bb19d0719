"""`python -m albumcover cover`: prompts for a song or an album folder, covers as PNG files."""

import pytest
from PIL import Image

from albumcover.cli.main import main
from tests.music_library import write_album
from tests.tiny_models import save_tiny_sd


@pytest.fixture(scope="module")
def album(clip_path, tmp_path_factory):
    """An album folder: a tagged track, an untagged one, and a text file posing as a song."""
    return write_album(tmp_path_factory.mktemp("album"), clip_path)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "pipe")


def test_album_prompt_only_one_prompt_per_track(album, capsys):
    status = main(["cover", str(album), "--artist", "Ana", "--date", "2024", "--prompt-only"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith(str(album / "01 - Night Drive.mp3"))
    assert "titled Tagged Title" in lines[0]  # the title tag wins over the file name
    assert "titled Slow Lights" in lines[1]  # no tag: the file name without its track number
    for line in lines:
        assert "by Ana" in line and "released in 2024" in line
        assert line.split(": ", 1)[1].startswith("cover album of ")
    assert "03 - Broken.mp3" in err and "not an audio file" in err
    assert status == 1  # one track failed; the others were still described


def test_single_song_writes_seeded_pngs(album, tiny_model, tmp_path, capsys):
    out_dir = tmp_path / "covers"
    argv = ["cover", str(album / "02_Slow Lights.mp3"), "--title", "Slow Lights"]
    argv += ["--category", "jazz", "--model", str(tiny_model), "--n", "2", "--steps", "2"]
    argv += ["--size", "64", "--seed", "11", "--out", str(out_dir), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cover album of jazz song, titled Slow Lights" in out
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == ["02_Slow Lights-11.png", "02_Slow Lights-12.png"]
    with Image.open(out_dir / files[0]) as image:
        assert image.size == (64, 64) and image.mode == "RGB"


def test_edited_prompt_is_used_as_given(album, tiny_model, tmp_path, capsys):
    argv = ["cover", str(album / "02_Slow Lights.mp3"), "--category", "jazz", "--prompt"]
    argv += ["a red door at night", "--model", str(tiny_model), "--n", "1", "--steps", "1"]
    argv += ["--size", "64", "--seed", "0", "--out", str(tmp_path), "--device", "cpu"]
    assert main(argv) == 0
    assert ": a red door at night\n" in capsys.readouterr().out
    assert (tmp_path / "02_Slow Lights-0.png").is_file()


def test_missing_model_is_a_clear_error(album, tmp_path, capsys):
    argv = ["cover", str(album / "02_Slow Lights.mp3"), "--model", str(tmp_path / "nowhere")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere") in err and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", "   "], "--prompt is empty"),
        (["--title", "One Song"], "--title names one song"),
    ],
)
def test_bad_settings_exit_2_before_any_model_loads(album, extra, message, capsys):
    assert main(["cover", str(album), "--prompt-only", *extra]) == 2
    assert message in capsys.readouterr().err


def test_empty_folder_and_bad_flags(tmp_path, capsys):
    assert main(["cover", str(tmp_path), "--prompt-only"]) == 2
    assert "no audio files" in capsys.readouterr().err
    for argv in (["cover"], ["cover", "x.mp3", "--steps", "0"], ["cover", "x.mp3", "--seed", "-1"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
