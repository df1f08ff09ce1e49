# `make run` and `make test` each set themselves up: a missing .venv is created and the
# project installed into it before anything runs. `make run` installs the runtime only;
# `make test` (and lint, bench) add the dev extras. Each install has its own stamp.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
CONFIG ?= config/offline-demo.toml
# The offline demo's control channel. Another hedgekeeper (a service) may hold 8765:
# `make run CONTROL_PORT=8766`, or 0 for any free port (the log line control.listening
# says which).
CONTROL_PORT  ?= 8765
# The demo's control token, printed below: halt, resume, flatten and hedge-now need it.
# It only guards a simulated exchange; a real daemon gets its own secret (docs/operations.md).
CONTROL_TOKEN ?= offline-demo-token-0001

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: pip would byte-compile every file of every dependency (ccxt alone has
# thousands) before the demo starts; Python compiles the few modules the demo imports.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

run: $(RUN_STAMP)
	@echo "offline demo: control on 127.0.0.1:$(CONTROL_PORT), token $(CONTROL_TOKEN)" >&2
	@echo "  in another terminal: $(BIN)/hedgekeeper status --url http://127.0.0.1:$(CONTROL_PORT)" >&2
	@echo "  and: $(BIN)/hedgekeeper halt --url http://127.0.0.1:$(CONTROL_PORT) --token $(CONTROL_TOKEN)" >&2
	HEDGEKEEPER_CONTROL__PORT=$(CONTROL_PORT) HEDGEKEEPER_CONTROL__TOKEN=$(CONTROL_TOKEN) \
		$(BIN)/hedgekeeper run --config $(CONFIG)

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check daemon tests bench
	$(BIN)/mypy

bench: $(DEV_STAMP)
	$(BIN)/python bench/cycle.py

clean:
	rm -rf $(VENV) state .pytest_cache .mypy_cache .ruff_cache
