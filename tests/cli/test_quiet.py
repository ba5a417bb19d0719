"""Quiet by default: a CLI call prints what was asked for and real warnings, no library chatter."""

import os
import subprocess
import sys

import pytest
import torch

from albumcover.paint.dtypes import bf16_native
from tests.app_server import ROOT
from tests.space.test_checks import CHATTER
from tests.tiny_models import save_tiny_sd


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd(tmp_path_factory.mktemp("sd") / "pipe")


def run_cli(*argv, cache=None):
    env = None if cache is None else dict(os.environ, XDG_CACHE_HOME=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "albumcover", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_cover_prints_the_prompt_and_the_files_only(clip_path, tiny_model, tmp_path):
    argv = ["cover", str(clip_path), "--category", "jazz", "--model", str(tiny_model), "--n", "1"]
    argv += ["--steps", "1", "--size", "64", "--seed", "5", "--negative-prompt", "blurry"]
    argv += ["--out", str(tmp_path / "covers"), "--device", "cpu", "--prompt", "a red door"]
    argv += ["--no-fast"]  # the CPU default's few-step LoRA is on the Hub: offline, a real warning
    cache = tmp_path / "cache"  # its own: the first run meets no export of this model
    wrote = [
        f"{clip_path}: a red door",
        f"  wrote {tmp_path / 'covers' / (clip_path.stem + '-5.png')}",
    ]
    first = run_cli(*argv, cache=cache)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == wrote
    if bf16_native(torch.device("cpu")):  # the UNet goes through OpenVINO: one pause, told
        (notice,) = first.stderr.splitlines()
        assert notice.startswith("albumcover: WARNING: converting the UNet for OpenVINO, once")
    else:
        assert first.stderr == ""
    again = run_cli(*argv, cache=cache)
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    assert again.stdout.splitlines() == wrote


def test_tag_prints_the_tags_only(clip_path):
    done = run_cli("tag", str(clip_path), "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(done.stdout.splitlines()) == 1 and done.stdout.startswith(f"{clip_path}: ")
    assert not any(c in done.stdout for c in CHATTER)
