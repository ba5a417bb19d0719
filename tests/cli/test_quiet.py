"""Quiet by default: a CLI call prints what was asked for and real warnings, no library chatter."""

import subprocess
import sys

import pytest

from tests.app_server import ROOT
from tests.space.test_checks import CHATTER
from tests.tiny_models import save_tiny_sd


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "pipe")


def run_cli(*argv):
    return subprocess.run(
        [sys.executable, "-m", "albumcover", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_cover_prints_the_prompt_and_the_files_only(clip_path, tiny_model, tmp_path):
    done = run_cli(
        *("cover", str(clip_path), "--category", "jazz", "--model", str(tiny_model), "--n", "1"),
        *("--steps", "1", "--size", "64", "--seed", "5", "--negative-prompt", "blurry"),
        *("--out", str(tmp_path / "covers"), "--device", "cpu", "--prompt", "a red door"),
        "--no-fast",  # the CPU default's few-step LoRA is on the Hub: offline, a real warning
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines() == [
        f"{clip_path}: a red door",
        f"  wrote {tmp_path / 'covers' / (clip_path.stem + '-5.png')}",
    ]


def test_tag_prints_the_tags_only(clip_path):
    done = run_cli("tag", str(clip_path), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith(f"{clip_path}: ")
    assert not any(c in done.stdout for c in CHATTER)
