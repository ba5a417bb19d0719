# The two commands: `make run` starts the app, `make test` runs the whole suite.
# Both set everything up first (`make setup`), which is quick when already done.
PY := .venv/bin/python
ARGS ?=

.PHONY: setup setup-dev run test lint format bench

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh --dev

run: setup
	$(PY) app.py $(ARGS)

test: setup-dev
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) -m pytest $(ARGS)

format: setup-dev
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench: setup-dev
	$(PY) benchmarks/bench_tagger.py
