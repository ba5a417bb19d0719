"""``python -m albumcover tag``: text and JSON output, bad files, bad flags."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from albumcover.cli.main import build_parser, main
from albumcover.ear.audio import load_audio
from albumcover.ear.musicnn import MSD_LABELS, MTT_LABELS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def songs(clip_path, tmp_path_factory) -> list[Path]:
    """Two short wavs cut from the shared clip (one and two patches: fast to tag)."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("songs")
    audio = load_audio(clip_path)
    paths = []
    for name, start, seconds in (("first.wav", 0, 3.5), ("second.wav", 12, 6.5)):
        path = folder / name
        sf.write(path, audio[16000 * start : 16000 * start + int(16000 * seconds)], 16000)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


def test_text_output_one_line_per_file(songs, cache, capsys):
    assert main(["tag", *map(str, songs), "--top", "4", "--cache-dir", cache]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2
    for line, song in zip(lines, songs, strict=True):
        name, tags = line.split(": ", 1)
        assert name == str(song)
        pairs = tags.split(", ")
        assert len(pairs) == 4
        for pair in pairs:
            label, score = pair.rsplit(" (", 1)
            assert label in MTT_LABELS
            assert 0 <= float(score.rstrip(")")) <= 1
    assert err == ""


def test_json_lines(songs, cache, capsys):
    argv = ["tag", *map(str, songs), "--json", "--model", "MSD_musicnn", "--cache-dir", cache]
    assert main([*argv, "--top", "2", "--hop", "1.5"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in records] == list(map(str, songs))
    for record in records:
        assert record["model"] == "MSD_musicnn"
        assert list(record["scores"]) == MSD_LABELS
        assert len(record["tags"]) == 2
        best = sorted(record["scores"], key=record["scores"].get, reverse=True)[:2]
        assert record["tags"] == best
        taggram = np.array(record["taggram"])
        assert taggram.shape[1] == 50
        np.testing.assert_allclose(taggram.mean(0), list(record["scores"].values()), rtol=1e-5)
    # 1.5 s hops: 3.5 s -> 1 patch, 6.5 s -> 3 patches
    assert [len(r["taggram"]) for r in records] == [1, 3]


def test_bad_files_are_reported_and_the_rest_tagged(songs, cache, tmp_path, capsys):
    text = tmp_path / "lyrics.txt"
    text.write_text("la la la\n")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.flac"
    argv = ["tag", str(missing), str(songs[0]), str(text), str(empty), str(songs[1]), "--json"]
    assert main([*argv, "--cache-dir", cache]) == 1
    out, err = capsys.readouterr()
    assert [json.loads(line)["file"] for line in out.splitlines()] == list(map(str, songs))
    errors = err.splitlines()
    assert len(errors) == 3
    for line, path, reason in zip(
        errors, (missing, text, empty), ("not found", "text", "empty"), strict=True
    ):
        assert line.startswith(f"albumcover tag: {path}: ")
        assert reason in line


def test_unusable_weights_exit_1(songs, tmp_path, capsys):
    assert main(["tag", str(songs[0]), "--weights-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("albumcover tag: error: ")
    assert "weights_dir must hold the musicnn model folders" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["tag", "a.mp3", "--model", "MSD_musicnn_big"], "invalid choice: 'MSD_musicnn_big'"),
        (["tag", "a.mp3", "--top", "0"], "must be at least 1"),
        (["tag", "a.mp3", "--top", "51"], "50 labels"),
        (["tag", "a.mp3", "--top", "two"], "not an integer"),
        (["tag", "a.mp3", "--hop", "-1"], "positive number of seconds"),
        (["tag", "a.mp3", "--hop", "nan"], "positive number of seconds"),
        (["tag", "a.mp3", "--hop", "0.01"], "less than one frame"),
        (["tag", "a.mp3", "--batch-size", "0"], "must be at least 1"),
        (["tag"], "required: AUDIO"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_parser_has_a_subcommand_per_function():
    parser = build_parser()
    args = parser.parse_args(["tag", "x.mp3"])
    assert args.command == "tag" and args.func.__name__ == "run_tag"
    assert args.model == "MTT_musicnn" and args.top == 3 and args.hop is None


def test_python_dash_m_entry_point():
    run = subprocess.run(
        [sys.executable, "-m", "albumcover", "tag", "x.mp3", "--model", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "albumcover tag: error: argument --model: invalid choice: 'nope'" in run.stderr
