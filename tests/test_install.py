"""The project installs as a package: ``pip install -e .`` (offline, as scripts/setup.sh runs it)
gives an ``albumcover`` command, and albumcover/train import from anywhere, so benchmarks and
tools need no sys.path edits."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh venv that sees this environment's packages (a .pth file) but not the checkout,
    with the project installed editable into it, offline (no build isolation)."""
    folder = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
        + ["--no-build-isolation", "--no-index", "-e", str(ROOT)],
        check=True,
        cwd=folder,
    )
    return folder


def run(venv: Path, *argv, cwd="/") -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_albumcover_command(venv):
    done = run(venv, venv / "bin" / "albumcover", "cover", "song.mp3", "--n", "9")
    assert done.returncode == 2
    assert "albumcover cover: error: argument --n: must be from 1 to 4, got 9" in done.stderr


def test_packages_import_from_anywhere(venv):
    code = "import albumcover, train.build_dataset; print(albumcover.__file__)"
    done = run(venv, venv / "bin" / "python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == ROOT / "albumcover" / "__init__.py"


def test_benchmarks_need_no_sys_path_edits(venv):
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        assert "sys.path" not in script.read_text(), script.name
    # bench_gan imports train.gan at the top: from another folder, that works only installed
    done = run(venv, venv / "bin" / "python", ROOT / "benchmarks" / "bench_gan.py", "--help")
    assert done.returncode == 0, done.stderr
