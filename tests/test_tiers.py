"""The two test tiers: `make test-fast` (pytest -m "not slow") leaves out the tests that start
the app, a browser, an install or a training run (tests/conftest.py marks them); `make test`
runs them all."""

import ast
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import SLOW_MODULES, SLOW_TESTS, module_key

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Read here, not from conftest's STARTS_SLOW, so the check does not follow a change to the rule:
# the app (tests/app_server.py or app.py as a process) and Chromium
STARTS = ("AppServer(", '"app.py"', "sync_playwright")


def recipe(target: str) -> list[str]:
    """The command lines of a Makefile target."""
    text = (ROOT / "Makefile").read_text()
    body = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.M)
    assert body, f"no target {target} in the Makefile"
    return [line.strip() for line in body.group(1).splitlines()]


def test_slow_is_a_registered_marker(pytestconfig):
    assert any(line.startswith("slow:") for line in pytestconfig.getini("markers"))


def test_make_test_runs_everything_and_test_fast_leaves_out_the_slow_tier():
    [full] = [line for line in recipe("test") if " -m pytest" in line]
    assert " -m " not in full.split("pytest", 1)[1]  # no marker filter: the slow tests run too
    [fast] = [line for line in recipe("test-fast") if " -m pytest" in line]
    assert '-m "not slow"' in fast
    assert re.search(r"^\.PHONY:.* test-fast\b", (ROOT / "Makefile").read_text(), re.M)


def test_every_table_entry_names_a_test_that_exists():
    """Stale entries (a module renamed, a test gone) would mark nothing, silently."""
    for module in SLOW_MODULES:
        assert (TESTS / f"{module}.py").is_file(), module
    for module, (patterns, reason) in SLOW_TESTS.items():
        assert reason and (TESTS / f"{module}.py").is_file(), module
        names = re.findall(r"^def (test_\w+)", (TESTS / f"{module}.py").read_text(), re.M)
        for pattern in patterns:
            assert fnmatch.filter(names, pattern), f"{module}: no test matches {pattern}"


def starts_slow(module: Path, test: str) -> bool:
    """Read from the source, not from the markers: the test, or a fixture of its own module it
    uses (directly or through other fixtures), starts the app or a browser."""
    text = module.read_text()
    functions = {
        node.name: node for node in ast.parse(text).body if isinstance(node, ast.FunctionDef)
    }
    seen, todo = set(), [test]
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        source = ast.get_source_segment(text, functions[name]) or ""
        if any(s in source for s in STARTS):
            return True
        todo += [arg.arg for arg in functions[name].args.args]
    return False


def test_the_fast_tier_leaves_out_browsers_installs_and_every_test_that_starts_the_app():
    serving = sorted(
        path
        for path in TESTS.rglob("test_*.py")
        if path.name != Path(__file__).name and any(s in path.read_text() for s in STARTS)
    )
    modules = sorted({*serving, *(TESTS / f"{m}.py" for m in SLOW_MODULES)})
    argv = ["--collect-only", "-q", "-p", "no:cacheprovider", "-m", "not slow"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *argv, *map(str, modules)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode in (0, 5), done.stdout + done.stderr  # 5: every test deselected
    kept = [line for line in done.stdout.splitlines() if "::" in line]
    deselected = re.search(r"(\d+) deselected", done.stdout)
    assert serving and deselected and int(deselected.group(1)) > 0, done.stdout
    for node in kept:
        path, name = node.split("::", 1)
        assert module_key(ROOT / path) not in SLOW_MODULES, node
        assert not starts_slow(ROOT / path, name.split("[", 1)[0]), node
