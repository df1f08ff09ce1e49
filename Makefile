# `make run` and `make test` each set themselves up: a missing .venv is created and the
# project installed into it (with its dev extras for tests) before anything runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config/offline-demo.toml

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hedgekeeper run --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check daemon tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/cycle.py

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache
