# The two commands: `make run` starts the app, `make test` runs the whole suite.
# Both set everything up first (`make setup`), which is quick when already done.
PY := .venv/bin/python
ARGS ?=

.PHONY: setup setup-dev run test test-fast test-space lint format bench

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh --dev

run: setup
	$(PY) app.py $(ARGS)

# The code stays Python 3.10-compatible (ZeroGPU runs 3.10.13 or 3.12.12; the Space uses 3.12 for
# diffusers 0.42): vermin fails on anything newer (except*, tomllib, typing.Self...)
VERMIN := .venv/bin/vermin -t=3.10- --violations --eval-annotations --no-tips -q

test: setup-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(VERMIN) albumcover train space tests benchmarks *.py
	$(PY) -m pytest $(ARGS)

# The inner loop: no lint, and no slow tests (app servers, browsers, installs, training runs:
# tests/conftest.py marks them); under 2 minutes on 2 cores. `make test` still runs everything.
test-fast: setup-dev
	$(PY) -m pytest -m "not slow" $(ARGS)

# The suite against the Space's own torch: requirements.txt's, the version ZeroGPU builds (setup
# and `make test` swap in the CPU build of requirements-cpu.txt). Run it once per change of
# dependencies. Its venv, .venv-space/, takes a multi-GB CUDA wheel from PyPI the first time.
test-space: setup-dev
	@VENV=.venv-space SPACE_TORCH=1 scripts/setup.sh --dev
	.venv-space/bin/python -m pytest $(ARGS)

format: setup-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: setup-dev
	$(PY) -m benchmarks.bench_tagger
