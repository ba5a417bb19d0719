"""Shared fixtures: paths to the read-only test data in ../shared/, and a hermetic cache."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Converted Musicnn weights (and any Hugging Face cache) go to a folder of this test run, not the
# user's ~/.cache: every run starts cold and leaves nothing behind. Set at import, before any
# test module loads a model, so servers started as subprocesses inherit it too.
_CACHE = tempfile.mkdtemp(prefix="albumcover-test-cache-")
os.environ["XDG_CACHE_HOME"] = _CACHE
# Nothing from the Hub in tests: a Hub id is looked up in the (empty) local cache only, at once,
# instead of five retries against an unreachable network (huggingface_hub reads this at import).
os.environ["HF_HUB_OFFLINE"] = "1"
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
CLIP = SHARED_AUDIO / "TRWJAZW128F42760DD_test.mp3"
REFERENCE = SHARED_AUDIO / "TRWJAZW128F42760DD_test.musicnn_reference.npz"


@pytest.fixture(scope="session")
def clip_path() -> Path:
    """The shared 30 s, 44.1 kHz stereo mp3 (Musicnn's own example clip)."""
    if not CLIP.exists():
        pytest.fail(f"test clip missing: {CLIP} (the suite reads ../shared/audio/)")
    return CLIP


@pytest.fixture(scope="session")
def reference():
    """The original Musicnn's outputs on the shared clip (see ../shared/audio/README.md)."""
    import numpy as np

    return np.load(REFERENCE)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one intra-op thread for a module (opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): tiny models gain nothing from
    threads, and on a busy shared machine OpenMP's spinning threads make each step 10-50x slower
    (a 1-step tiny SD call takes ~0.6 s on one thread and up to 10 s on two under load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
