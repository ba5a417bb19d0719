"""Shared fixtures: paths to the read-only test data in ../shared/."""

from pathlib import Path

import pytest

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
