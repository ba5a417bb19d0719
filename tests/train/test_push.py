"""train.push: the one Hub upload path (models and datasets), against a fake Hub that echoes the
token back and one that is not there: the local output stays byte for byte, no token is printed."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from train.push import (
    PushError,
    add_hub_arguments,
    check_hub_args,
    push_folder,
    redact,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hf_ThisIsNotARealTokenButMustNeverBePrinted"


class EchoingHub(BaseHTTPRequestHandler):
    """Refuses every request with a 401 whose message quotes the request's credentials, as a
    careless proxy or server might: only redaction keeps the token out of the messages."""

    requests: list[str] = []

    def _refuse(self):
        type(self).requests.append(f"{self.command} {self.path}")
        body = json.dumps({"error": f"Invalid credentials: {self.headers.get('authorization')}"})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Message", f"bad token {self.headers.get('authorization')}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_HEAD = _refuse

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    EchoingHub.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def output(tmp_path) -> Path:
    out = tmp_path / "out"
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "optimizer.bin").write_bytes(b"state")
    (out / "pytorch_lora_weights.safetensors").write_bytes(b"weights")
    (out / "README.md").write_text("card")
    return out


def test_a_refused_push_keeps_the_output_and_never_shows_the_token(
    hub, output, monkeypatch, tmp_path
):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    # the suite runs offline (conftest), read by huggingface_hub at import: this test's only
    # network is the fake Hub on 127.0.0.1
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    before = snapshot(output)
    with pytest.raises(PushError) as error:
        push_folder(output, "someone/covers", endpoint=hub)
    assert EchoingHub.requests, "the fake Hub was never asked"
    message = str(error.value)
    assert SECRET not in message and "401" in message
    assert "The local output in" in message and f"python -m train.push {output}" in message
    assert error.value.__cause__ is None  # no chained traceback that could carry headers
    assert snapshot(output) == before
    # a dataset gets the dataset retry command
    with pytest.raises(PushError, match="--repo_type dataset"):
        push_folder(output, "someone/covers", repo_type="dataset", endpoint=hub)


def test_the_retry_command_line_fails_in_one_line_without_the_token(hub, output, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env |= {"HF_TOKEN": SECRET, "HF_ENDPOINT": hub, "HF_HOME": str(tmp_path / "hf-home")}
    before = snapshot(output)
    result = subprocess.run(
        [sys.executable, "-m", "train.push", str(output), "--hub_model_id", "someone/covers"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"ERROR push of {output} to the Hub model repo 'someone/covers' failed")
    assert snapshot(output) == before


def test_no_token_fails_before_any_request(hub, output, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "empty-hf-home" / "token"))
    with pytest.raises(PushError, match="no Hugging Face token.*local output .* is complete"):
        push_folder(output, "someone/covers", endpoint=hub)
    assert EchoingHub.requests == []
    with pytest.raises(PushError, match="not a folder"):
        push_folder(tmp_path / "missing", "someone/covers", endpoint=hub)


def test_redact_hides_the_token_in_use_and_anything_shaped_like_one(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijkl")
    assert redact("header Bearer hf_abcdefghijkl, other hf_zzzzzzzzzzzz") == (
        "header Bearer ***, other hf_***"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--hub_token", "hf_x"], "hf auth login"),
        (["--push_to_hub", "me/covers"], "--push_to_hub --hub_model_id me/covers"),
        (["--hub_model_id", "me/covers"], "--hub_model_id only applies with --push_to_hub"),
        (["--hub_private_repo"], "--hub_private_repo only applies with --push_to_hub"),
        (["--push_to_hub", "--hub_model_id", "a b"], "repo id like user/name"),
    ],
)
def test_hub_flags_are_checked(argv, message):
    import argparse

    parser = argparse.ArgumentParser()
    add_hub_arguments(parser)
    with pytest.raises(ValueError, match=message):
        check_hub_args(parser.parse_args(argv), default_repo="out")


def test_hub_model_id_defaults_to_the_folder_name():
    import argparse

    parser = argparse.ArgumentParser()
    add_hub_arguments(parser)
    args = parser.parse_args(["--push_to_hub"])
    check_hub_args(args, default_repo="sd-covers")
    assert (args.push_to_hub, args.hub_model_id, args.hub_private_repo) == (
        True,
        "sd-covers",
        False,
    )
