"""The library stays a library: importing it (and tagging with it) pulls in no UI, no image
model stack, no training code and no TensorFlow."""

import subprocess
import sys

from tests.conftest import ROOT

HEAVY = {
    "gradio",
    "diffusers",
    "transformers",
    "accelerate",
    "peft",
    "tensorflow",
    "train",
    "spaces",
    "space",  # the web layer beside app.py
}


def _modules_after(code: str) -> set[str]:
    run = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(sorted(sys.modules))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {name.split(".")[0] for name in eval(run.stdout.strip().splitlines()[-1])}


def test_import_albumcover_is_light():
    loaded = _modules_after("import albumcover")
    assert not loaded & (HEAVY | {"torch", "librosa", "numpy"}), loaded & HEAVY


def test_tagging_and_prompting_need_no_ui_or_image_stack():
    code = (
        "import albumcover, albumcover.cli.main\n"
        "from albumcover import Tagger, SongInfo, build_prompt, describe_song, load_audio\n"
        "from albumcover.ear.features import log_mel_spectrogram, make_patches\n"
    )
    loaded = _modules_after(code)
    assert "torch" in loaded  # the tagger's own dependency, as a sanity check of the probe
    assert not loaded & HEAVY, loaded & HEAVY


def test_only_app_py_reads_the_environment():
    """The web layer gets every setting from app.py as an argument (read once, at start-up)."""
    for path in sorted((ROOT / "space").glob("*.py")):
        source = path.read_text()
        assert "os.environ" not in source and "getenv" not in source, path
