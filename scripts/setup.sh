#!/usr/bin/env bash
# Creates .venv/ with every pinned dependency, plus the Debian packages the app (and, with
# --dev, the test suite) needs. Re-running is quick: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# Which torch: requirements-cpu.txt's CPU build (local set-up, CI), or with SPACE_TORCH=1 the one
# requirements.txt pins for the Space (`make test-space`, into its own VENV: a multi-GB CUDA wheel).
SPACE_TORCH=${SPACE_TORCH:-0}
MUSICNN_WHEEL=musicnn-0.1.0-py3-none-any.whl
MUSICNN_SHA256=f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa

# Debian packages: packages.txt is what a Space installs; the browser (UI tests) and tesseract
# (the lettering's OCR test) are for the test suite only.
debs=$(grep -v '^\s*#' packages.txt | xargs)
[ "$DEV" = 1 ] && debs="$debs chromium chromium-driver tesseract-ocr"  # OCR: legibility test
missing=""
for d in $debs; do dpkg -s "$d" >/dev/null 2>&1 || missing="$missing $d"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages:$missing"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
  else
    echo "setup: please install these Debian packages first:$missing" >&2
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

reqs=requirements.txt
[ "$DEV" = 1 ] && reqs=requirements-dev.txt
stamp="$VENV/.stamp-$(basename "$reqs" .txt)"
want=$( (cat requirements.txt requirements-cpu.txt "$reqs" scripts/setup.sh; echo "$SPACE_TORCH") \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # every pin in one file: requirements.txt (its torch line swapped for the CPU build unless
  # SPACE_TORCH=1), then with --dev the tools of requirements-dev.txt (less its -r line)
  pins="$VENV/.pins.txt"
  if [ "$SPACE_TORCH" = 1 ]; then
    cat requirements.txt
  else
    grep -v '^torch==' requirements.txt
    cat requirements-cpu.txt
  fi > "$pins"
  [ "$DEV" = 1 ] && grep -v '^-r ' requirements-dev.txt >> "$pins"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$pins"
  # musicnn 0.1.0 pins numpy<1.17, so only its files are installed (the weights we port).
  mkdir -p "$VENV/wheels"
  if [ ! -f "$VENV/wheels/$MUSICNN_WHEEL" ]; then
    "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps \
      --only-binary=:all: -d "$VENV/wheels" musicnn==0.1.0
  fi
  echo "$MUSICNN_SHA256  $VENV/wheels/$MUSICNN_WHEEL" | sha256sum -c --quiet -
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    "$VENV/wheels/$MUSICNN_WHEEL"
  echo "$want" > "$stamp"
fi
# The project itself, editable: `albumcover` on the PATH of the venv, and albumcover/train
# importable from anywhere (benchmarks, tools). No build isolation: setuptools comes from
# requirements.txt, so this works offline.
here=$(pwd -P)
installed=$(cd / && "$here/$VENV/bin/python" -c \
  'import albumcover, pathlib; print(pathlib.Path(albumcover.__file__).resolve().parents[1])' \
  2>/dev/null || true)
# pyproject.toml names the packages and the command's entry point: a change reinstalls.
project=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$VENV/bin/albumcover" ] || [ "$installed" != "$here" ] \
  || [ "$(cat "$VENV/.stamp-project" 2>/dev/null)" != "$project" ]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
    --no-build-isolation -e .
  echo "$project" > "$VENV/.stamp-project"
fi
