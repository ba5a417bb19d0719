"""Shared fixtures (the read-only test data in ../shared/, a hermetic cache) and the slow tier."""

import atexit
import fnmatch
import inspect
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


# The slow tier: `make test-fast` (pytest -m "not slow") leaves these out for the inner loop and
# finishes in under 2 minutes on a 2-core machine; `make test` (CI) runs everything. A test is
# slow when it, or a fixture of tests/ it uses, starts the app or a browser (STARTS_SLOW in its
# source), or when its module or its name is in the tables below. Measured with --durations=0 on
# a busy 2-core VM: each entry costs seconds (1.5-20 s a test; the fast tier's are ~0.2 s).
STARTS_SLOW = ("AppServer(", "sync_playwright", '"app.py"')  # tests/app_server.py, Chromium
TESTS = Path(__file__).resolve().parent
SLOW_MODULES = {  # module (path under tests/, no .py): reason
    "space/test_browser": "headless Chromium driving the app",
    "test_install": "a fresh venv and `pip install -e .` into it",
    "train/test_train_text_to_image": "training runs (tiny models, a few steps each)",
    "train/test_train_sdxl": "training runs (tiny models, a few steps each)",
    "train/test_train_dreambooth": "training runs (tiny models, a few steps each)",
    "train/test_gan": "training runs, and the GAN commands as processes",
    "train/dataset/test_batching": "songs tagged on every engine, dataset builds",
    "train/dataset/test_shards": "dataset builds with worker processes",
    "cli/test_quiet": "the command line as a process that paints",
    "release/test_legibility": "tesseract reads back ~100 lettered covers, some 3000 px",
}
_PROCESS = "the command line in a fresh Python process (imports torch, loads models)"
SLOW_TESTS = {  # module: (test name patterns (fnmatch, without parameters), reason)
    "cli/test_tag": (["test_python_dash_m_entry_point"], _PROCESS),
    "release/test_check": (["test_cli_as_a_process"], _PROCESS),
    "train/test_evaluate": (["test_unwritable_outputs_fail_*"], _PROCESS),
    "train/dataset/test_output_checks": (["test_build_dataset_refuses_*"], _PROCESS),
    "test_package": (["test_tagging_and_prompting_need_no_ui_*"], _PROCESS),
    "cli/test_cover_flags": (
        [
            "test_unusable_out_is_one_line_*",
            "test_a_prompt_over_the_token_budget_*",
            "test_engine_forced_*",
        ],
        "a process, and the first painting with a tiny model; three paintings, two engines",
    ),
    "cli/test_release": (
        ["test_diffusion_upscaler_flag", "test_in_place_tags_the_originals"],
        "a diffusion upscaler; tagging real songs",
    ),
    "release/test_export": (
        ["test_quality_steps_down_*"],
        "JPEG encodes of a 3000 px cover, many times",
    ),
    "ear/test_frontend": (["test_bf16_*"], "both taggers in bfloat16 on two full clips"),
    "test_pipeline": (["test_a_song_is_categorised_*"], "a whole song tagged patch by patch"),
    "kit/test_canvas": (["test_large_canvas"], "a 1080 x 1920 Canvas encoded"),
    "cli/test_kit": (
        ["test_an_album_*", "test_without_a_cover_*"],
        "videos of every track of an album; a cover painted with a tiny model",
    ),
    "space/test_zerogpu": (["test_model_bytes_counts_the_weights"], "diffusers loads a pipeline"),
    "paint/test_dtypes": (
        ["test_forced_either_way_*", "test_cpu_convolutions_*"],
        "two tiny pipelines loaded and painted each, in two dtypes or layouts",
    ),
    "paint/test_ovengine": (
        [
            "test_float32_covers_*",
            "test_bfloat16_covers_*",
            "test_the_export_is_made_once_*",
            "test_other_weights_*",
            "test_a_damaged_export_*",
            "test_only_the_most_recently_used_*",
            "test_auto_falls_back_*",
            "test_a_read_only_cache_*",
        ],
        "tiny UNets converted by OpenVINO, pipelines loaded and painted twice",
    ),
    "paint/test_fastpath": (
        ["test_one_step_tcd_*", "test_a_family_without_*"],
        "four tiny pipelines loaded (SD and SDXL, 1 and 2 steps), or three with fallbacks",
    ),
}


def _source(func) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ""


def _starts_slow(item, sources: dict) -> bool:
    """The test, or a fixture of tests/ it uses, starts the app or a browser."""
    funcs = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)  # pytest's record of the fixtures a test uses
    for defs in (info.name2fixturedefs if info else {}).values():
        funcs += [d.func for d in defs if getattr(d.func, "__module__", "").startswith("tests")]
    for func in funcs:
        if func is not None and func not in sources:
            sources[func] = any(s in _source(func) for s in STARTS_SLOW)
        if func is not None and sources[func]:
            return True
    return False


def module_key(path: Path) -> str:
    """A test module's key in the tables: its path under tests/ without .py ("cli/test_tag")."""
    return path.resolve().relative_to(TESTS).with_suffix("").as_posix()


def slow_reason(item, sources: dict | None = None) -> str | None:
    """Why ``item`` belongs to the slow tier, or None."""
    module = module_key(Path(str(item.fspath)))
    if module in SLOW_MODULES:
        return SLOW_MODULES[module]
    patterns, reason = SLOW_TESTS.get(module, ((), ""))
    name = getattr(item, "originalname", item.name)  # without its parameters
    if any(fnmatch.fnmatchcase(name, p) for p in patterns):
        return reason
    if _starts_slow(item, {} if sources is None else sources):
        return "starts the app or a browser"
    return None


def pytest_collection_modifyitems(config, items):
    sources: dict = {}  # fixture function -> whether it starts something slow
    for item in items:
        reason = slow_reason(item, sources)
        if reason:
            item.add_marker(pytest.mark.slow(reason=reason))
