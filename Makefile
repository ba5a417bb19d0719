# The two commands: `make run` starts the app, `make test` runs the whole suite.
# Both set everything up first (`make setup`), which is quick when already done.
PY := .venv/bin/python
ARGS ?=

.PHONY: setup setup-dev run test test-fast lint format bench

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh --dev

run: setup
	$(PY) app.py $(ARGS)

# ZeroGPU Spaces run Python 3.10: vermin fails on anything newer (except*, tomllib, typing.Self...)
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

format: setup-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: setup-dev
	$(PY) -m benchmarks.bench_tagger
