"""Every flag of ``albumcover cover`` refused with a message naming it and its allowed values;
the output folder checked before any model loads; cuts to the token budget told."""

import subprocess
import sys

import pytest

from albumcover.cli.main import main
from tests.app_server import ROOT
from tests.tiny_models import save_tiny_sd

SONG = "song.mp3"  # never opened: every case here fails before any audio is read


@pytest.mark.parametrize(
    "flag, value, rule",
    [
        ("--n", "0", "from 1 to 4"),
        ("--n", "5", "from 1 to 4"),
        ("--n", "two", "not an integer (from 1 to 4)"),
        ("--n", "2.5", "not an integer"),
        ("--steps", "0", "from 1 to 150"),
        ("--steps", "151", "from 1 to 150"),
        ("--steps", "", "not an integer"),
        ("--guidance", "nan", "a number from 0 to 30"),
        ("--guidance", "inf", "a number from 0 to 30"),
        ("--guidance", "-1", "a number from 0 to 30"),
        ("--guidance", "99", "a number from 0 to 30"),
        ("--guidance", "high", "a number from 0 to 30"),
        ("--seed", "-1", "from 0 to 4294967295"),
        ("--seed", str(2**32), "from 0 to 4294967295"),
        ("--seed", "1.5", "not an integer"),
        ("--size", "100", "a multiple of 8"),
        ("--size", "32", "from 64 to 2048"),
        ("--size", "4096", "from 64 to 2048"),
        ("--category", "polka from mars", "must be one of rock, pop"),
        ("--style", "baroque", "invalid choice"),
        ("--tagger", "MTT_big", "invalid choice"),
        ("--dtype", "int8", "must be one of auto, float32"),
        ("--engine", "tensorrt", "invalid choice: 'tensorrt'"),
    ],
)
def test_bad_cover_flags_exit_2_naming_the_flag(flag, value, rule, capsys):
    with pytest.raises(SystemExit) as info:
        main(["cover", SONG, flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and rule in err, err


@pytest.mark.parametrize(
    "flag, value, rule",
    [
        ("--top", "nan", "not an integer"),
        ("--top", "0", "at least 1"),
        ("--hop", "inf", "positive number of seconds"),
        ("--batch-size", "[1]", "not an integer"),
    ],
)
def test_bad_tag_flags_exit_2_naming_the_flag(flag, value, rule, capsys):
    with pytest.raises(SystemExit) as info:
        main(["tag", SONG, flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err and rule in err, err


def test_seed_at_the_top_of_the_range_is_taken(capsys):
    # (--prompt-only: the seed is parsed and validated, nothing painted; the painting itself is
    # covered in test_app's seed wrap test)
    assert main(["cover", "missing.mp3", "--prompt-only", "--seed", str(2**32 - 1), "--n", "4"])
    assert "missing.mp3" in capsys.readouterr().err  # failed on the song, not on the seed


@pytest.fixture
def plain_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("keep me")
    return path


@pytest.mark.parametrize(
    "out, message",
    [
        ("{file}", "--out '{file}' is a file, not a folder"),
        ("{file}/covers", "--out '{file}/covers' cannot be created: Not a directory"),
        ("/sys/kernel", "--out '/sys/kernel' is not writable: Permission denied"),
    ],
)
def test_unusable_out_fails_before_the_model_loads(plain_file, out, message, capsys):
    out, message = out.format(file=plain_file), message.format(file=plain_file)
    # a model that cannot load: had it been tried first, its error would be the one printed
    argv = ["cover", SONG, "--out", out, "--model", "/nonexistent-model"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"albumcover cover: error: {message}\n"
    assert plain_file.read_text() == "keep me"


def test_unusable_out_is_one_line_from_the_command(plain_file):
    done = subprocess.run(
        [sys.executable, "-m", "albumcover", "cover", SONG, "--out", str(plain_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"albumcover cover: error: --out {str(plain_file)!r} is a file, not a folder"
    ]


def test_prompt_only_needs_no_out(plain_file, clip_path, capsys):
    argv = [
        "cover",
        str(clip_path),
        "--prompt-only",
        "--category",
        "jazz",
        "--out",
        str(plain_file),
    ]
    assert main(argv) == 0
    assert "cover album of jazz song" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "pipe")


def test_a_prompt_over_the_token_budget_is_told_what_was_cut(clip_path, tiny_model, tmp_path):
    words = [f"word{i}" for i in range(80)]  # ~4 tokens each for the tiny tokenizer: far over 77
    argv = [sys.executable, "-m", "albumcover", "cover", str(clip_path), "--category", "jazz"]
    argv += ["--prompt", " ".join(words), "--negative-prompt", "blurry"]
    argv += ["--model", str(tiny_model), "--n", "1", "--steps", "1", "--size", "64"]
    argv += ["--seed", "3", "--out", str(tmp_path), "--device", "cpu"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "--prompt is longer" in line]
    assert len(warning) == 1, done.stderr
    ignored = warning[0].split("ignored: ", 1)[1].strip("'")
    assert ignored.endswith("word79") and ignored.split()[0] in words[1:]
    assert "--negative-prompt" not in done.stderr  # "blurry" fits
    assert (tmp_path / f"{clip_path.stem}-3.png").is_file()


def test_a_written_prompt_shortened_to_the_budget_says_what_it_left_out(
    clip_path, tiny_model, capsys
):
    title = "The Longest Night Drive " + " ".join(f"Verse{i}" for i in range(40))
    argv = ["cover", str(clip_path), "--prompt-only", "--category", "jazz", "--title", title]
    argv += ["--model", str(tiny_model)]  # its tokenizer counts the budget
    assert main(argv) == 0
    prompt_line, note = capsys.readouterr().out.splitlines()
    assert "Verse39" not in prompt_line
    assert note.startswith("  (shortened to the model's token budget; left out: ")
    assert "Verse39" in note


def test_dtype_forced_either_way_and_emulated_bf16_refused(clip_path, tiny_model, tmp_path, caplog):
    import torch

    from albumcover.paint.dtypes import bf16_native

    caplog.set_level("INFO", logger="albumcover")
    argv = ["cover", str(clip_path), "--category", "jazz", "--prompt", "a red door", "--n", "1"]
    argv += ["--model", str(tiny_model), "--steps", "1", "--size", "64", "--no-fast"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--dtype", "float32"]) == 0
    assert "on cpu in float32" in caplog.text
    caplog.clear()
    code = main([*argv, "--out", str(tmp_path / "b"), "--dtype", "bf16"])
    if bf16_native(torch.device("cpu")):
        assert code == 0 and "on cpu in bfloat16" in caplog.text
    else:  # emulated: refused with the fix in the message, nothing painted
        assert code == 1 and not list((tmp_path / "b").glob("*.png"))


def test_engine_forced_either_way_and_refused_where_it_cannot_run(
    clip_path, tiny_model, tmp_path, caplog, capsys
):
    caplog.set_level("INFO", logger="albumcover")
    argv = ["cover", str(clip_path), "--category", "jazz", "--prompt", "a red door", "--n", "1"]
    argv += ["--model", str(tiny_model), "--steps", "1", "--size", "64", "--no-fast", "--seed", "2"]
    assert (
        main([*argv, "--out", str(tmp_path / "a"), "--dtype", "float32", "--engine", "openvino"])
        == 0
    )
    assert "denoiser in openvino" in caplog.text
    caplog.clear()
    assert (
        main([*argv, "--out", str(tmp_path / "b"), "--dtype", "float32", "--engine", "torch"]) == 0
    )
    assert "denoiser in torch" in caplog.text
    capsys.readouterr()
    code = main([*argv, "--out", str(tmp_path / "c"), "--dtype", "float16", "--engine", "openvino"])
    assert code == 1 and not list((tmp_path / "c").glob("*.png"))
    assert "OpenVINO runs bfloat16 or float32, not float16" in capsys.readouterr().err
