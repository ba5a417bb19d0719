"""The dataset builder and the Jamendo collector check their output folder before any work
(tokenizer, taggers, network) and fail with one line naming it; the writers share files.py."""

import subprocess
import sys

import pytest

from tests.app_server import ROOT


@pytest.fixture
def plain_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("keep me")
    return path


def run(module: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "out, reason",
    [
        ("{file}/dataset", "cannot be created: Not a directory"),
        ("/sys/kernel", "is not writable: Permission denied"),
    ],
)
def test_build_dataset_refuses_an_unusable_output_dir_first(tmp_path, plain_file, out, reason):
    out = out.format(file=plain_file)
    music = tmp_path / "music"
    music.mkdir()
    # --tokenizer names a model that cannot load: had it been tried first, that would be the error
    done = run(
        "train.build_dataset",
        *("--audio_dir", str(music), "--output_dir", out, "--tokenizer", "/no/such/model"),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == f"python -m train.build_dataset: error: --output_dir {out!r} {reason}"
    assert "Traceback" not in done.stderr
    assert plain_file.read_text() == "keep me"


def test_jamendo_refuses_an_unusable_output_dir_before_any_request(plain_file):
    # an API URL nothing listens on: a request would fail differently (and slowly)
    done = run(
        "train.jamendo",
        *("--client_id", "x", "--output_dir", str(plain_file), "--api_url", "http://127.0.0.1:9"),
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"python -m train.jamendo: error: --output_dir {str(plain_file)!r} is a file, not a folder"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("timeout", ["nan", "inf", "0"])
def test_jamendo_timeout_must_be_a_finite_positive_number(tmp_path, timeout, capsys):
    from train.jamendo import parse_args

    with pytest.raises(SystemExit) as info:
        parse_args(["--output_dir", str(tmp_path), "--timeout", timeout])
    assert info.value.code == 2
    assert "--timeout must be a positive number of seconds" in capsys.readouterr().err


def test_one_atomic_writer():
    """No writer in the library or these scripts keeps its own temp file + rename."""
    scripts = ["train/build_dataset.py", "train/dataset/build.py", "train/dataset/files.py"]
    scripts += ["train/dataset/tagcache.py"]
    for path in ["albumcover/ear/weights.py", "albumcover/cli/main.py", *scripts]:
        text = (ROOT / path).read_text()
        assert "os.replace" not in text and "mkstemp" not in text, path
    text = (ROOT / "train/dataset/jamendo.py").read_text()
    assert "os.replace" not in text and "temp_file_beside" not in text
