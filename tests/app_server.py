"""Run the real app (``python app.py``) on a free local port for the app and browser tests.

The server runs in its own process exactly as a user starts it, configured only through the
environment; tests talk to it over HTTP (gradio_client, Chromium) and stop it afterwards.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = (
    300.0  # seconds; imports + two Musicnn taggers + the image model on a busy 2-core VM
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class AppServer:
    """``python app.py`` on 127.0.0.1 with ``env`` added to the environment.

    Starting returns at once (so several servers can start side by side); :meth:`wait` blocks
    until the app answers and returns its URL. Use as a context manager to always stop it. The
    output goes to ``tmp_dir/server.log`` and is quoted when the app fails to start. Nothing may
    reach the network: the Hub is switched off and gradio analytics disabled.
    """

    def __init__(self, tmp_dir: Path, **env: str):
        self.tmp_dir = Path(tmp_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = self.tmp_dir / "server.log"
        full_env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "GRADIO_TEMP_DIR": str(self.tmp_dir / "gradio"),
            "MPLCONFIGDIR": str(self.tmp_dir / "matplotlib"),
            "PYTHONUNBUFFERED": "1",
            # the fast path is on by default without a GPU, and its LCM-LoRA is on the Hub:
            # tests that want it pass ALBUMCOVER_FAST=1 with ALBUMCOVER_FAST_LORA=a local folder
            "ALBUMCOVER_FAST": "0",
            **env,
        }
        command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1"]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                cwd=self.tmp_dir,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        """Our process has bound the port (gradio prints the URL once it has) and answers there.

        Both, not only an answer: free_port() releases the port before the app binds it, and on a
        machine running several test sessions another server may take it in between; then this
        app fails to bind and exits, and the answer would come from someone else's server.
        """
        said = f"Running on local URL:  http://127.0.0.1:{self.port}"
        return said in self.log_path.read_text(errors="replace") and _answers(self.url)

    def wait(self, timeout: float = START_TIMEOUT) -> str:
        """Block until :meth:`ready` (checked every half second); return the URL."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.process.poll() is not None else "did not answer in time"
                raise RuntimeError(f"app.py {why} (port {self.port}); its output:\n{self.log()}")
            time.sleep(0.5)  # a polling interval: the condition above is what is waited for
        return self.url

    def log(self) -> str:
        """The server's output so far (the last 6000 characters)."""
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
