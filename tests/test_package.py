"""The library stays a library: importing it (and tagging with it) pulls in no UI, no image
model stack, no training code and no TensorFlow."""

import ast
import subprocess
import sys
from pathlib import Path

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


# Which rooms of albumcover/ each room may import (module-level imports, relative or absolute):
# the dependencies run one way, down to the serving contract, the atomic writer and the one
# image decoder (images).
ROOMS_MAY_IMPORT = {
    "cli": {
        "ear",
        "paint",
        "release",
        "songfile",
        "pipeline",
        "prompts",
        "recipe",
        "files",
        "images",
        "kit",
    },
    "kit": {"ear", "release", "songfile", "files", "images"},  # nothing but cli imports kit
    "pipeline": {"ear", "paint", "prompts", "recipe"},
    "ear": {"recipe", "prompts", "files"},
    "paint": {"prompts"},
    "release": {"files", "images"},
    "songfile": {"prompts", "files", "images"},
    "recipe": {"prompts", "files"},
    "prompts": set(),
    "files": set(),
    "images": set(),
}


def _imports_of(path: Path) -> set[str]:
    """The albumcover modules ``path`` imports, as dotted names (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    else:
        package = package.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + [node.module or ""]).strip(".") if node.level else node.module
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name and name.split(".")[0] == "albumcover"}


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_rooms_import_one_way_and_modules_form_no_cycle():
    modules = {}
    for path in sorted((ROOT / "albumcover").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = _imports_of(path)
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    for module, deps in graph.items():
        room = _room(module)
        for dep in deps:
            if room in ROOMS_MAY_IMPORT and _room(dep) not in {room, ""}:
                assert _room(dep) in ROOMS_MAY_IMPORT[room], f"{module} imports {dep}"
    # a cycle: some module reaches itself through the imports
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            assert module != start, f"import cycle through {start}"
            if module not in seen:
                seen.add(module)
                todo += graph[module]
