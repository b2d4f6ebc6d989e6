# The two commands the README opens with: `make run` and `make test`.
# Both create .venv on first use, so they work on a fresh machine with python3.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_PATHS := $(wildcard gateway sessions tests bench)

.PHONY: run test lint typecheck unit web-build web-test bench schema clean

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

run: $(BIN)/activate web-build
	$(BIN)/chat-gateway serve $(ARGS)

test: lint typecheck unit web-test

lint: $(BIN)/activate
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(BIN)/activate
	$(BIN)/mypy

unit: $(BIN)/activate
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# --- web-demo/: the page served at / (React + Vite) and its Vitest + Chromium tests ---
# Built only when Node.js is present; without it the gateway serves the API alone.
# CI sets WEB_DEMO_REQUIRED=1 so that a missing Node.js fails instead of skipping.
NPM := $(shell command -v npm 2>/dev/null)
ifneq ($(NPM),)
WEB_SOURCES := $(shell find web-demo/src web-demo/index.html web-demo/vite.config.ts web-demo/tsconfig.json -type f 2>/dev/null)

web-demo/node_modules/.package-lock.json: web-demo/package-lock.json
	cd web-demo && npm ci --no-audit --no-fund --loglevel=error
	touch $@

web-demo/dist/index.html: web-demo/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web-demo && npm run --silent build

web-build: web-demo/dist/index.html

web-test: $(BIN)/activate web-demo/dist/index.html
	cd web-demo && npm test
else
web-build:
	@echo "Node.js not found: starting without the web demo page at / (install Node.js >= 20.19 to get it)"

web-test:
	@if [ -n "$$WEB_DEMO_REQUIRED" ]; then echo "web-demo tests need Node.js (npm)"; exit 1; fi
	@echo "Node.js not found: SKIPPING the web-demo tests (install Node.js >= 20.19 to run them)"
endif

bench: $(BIN)/activate
	$(BIN)/python -m bench $(ARGS)

schema: $(BIN)/activate
	$(BIN)/python -m gateway.ws.schema > docs/protocol.schema.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
