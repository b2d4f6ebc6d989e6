# The two commands the README opens with: `make run` and `make test`.
# Both create .venv on first use, so they work on a fresh machine with python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_PATHS := $(wildcard gateway sessions tests bench)

.PHONY: run test lint typecheck unit bench schema clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

run: $(BIN)/activate
	$(BIN)/chat-gateway serve $(ARGS)

test: lint typecheck unit

lint: $(BIN)/activate
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(BIN)/activate
	$(BIN)/mypy

unit: $(BIN)/activate
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(BIN)/activate
	$(BIN)/python -m bench $(ARGS)

schema: $(BIN)/activate
	$(BIN)/python -m gateway.ws.schema > docs/protocol.schema.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
