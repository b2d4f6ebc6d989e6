# The two commands the README opens with: `make run` and `make test`.
# Both create .venv on first use, so they work on a fresh machine with python3.
# The venv is installed from the hash-pinned lock (requirements-dev.lock), so what
# `make test` and CI test is what the image (requirements.lock) ships. Change or add a
# dependency in pyproject.toml, then `make lock`; `make upgrade` (or
# `make upgrade PACKAGE=name`) moves pins forward.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LINT_PATHS := $(wildcard gateway sessions tests bench)
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock
# One resolution for every platform (markers), from the oldest supported Python.
COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command 'make lock'

.PHONY: run test lint typecheck unit web-build web-test bench schema lock upgrade clean

$(BIN)/activate: pyproject.toml $(DEV_LOCK)
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "make: '$(PYTHON) -m venv' failed. On Debian/Ubuntu install the venv module:" \
	       "apt-get install $$($(PYTHON) -c 'import sys; print("python3.%d-venv" % sys.version_info[1])' 2>/dev/null || echo python3-venv)" >&2; \
	  exit 1; }
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; \
	  echo "make: pyproject.toml needs a package that $(DEV_LOCK) does not pin: run 'make lock'" >&2; exit 1; }
	touch $(BIN)/activate

run: $(BIN)/activate web-build
	$(BIN)/chat-gateway serve $(ARGS)

test: lint typecheck unit web-test

lint: $(BIN)/activate
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports

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

# The protocol's JSON Schema, and the web demo client's TypeScript types generated from it
# (a web-demo test fails when they drift apart).
schema: $(BIN)/activate
	$(BIN)/python -m gateway.ws.schema > docs/protocol.schema.json
ifneq ($(NPM),)
	$(MAKE) web-demo/node_modules/.package-lock.json
	cd web-demo && npm run --silent gen:types
else
	@echo "Node.js not found: web-demo/src/client/protocol.gen.ts NOT regenerated (run 'npm run gen:types' in web-demo/)"
endif

# Re-resolve after editing pyproject.toml: existing pins are kept, new packages get the
# newest versions that fit. The runtime lock is constrained by the dev lock, so both
# always pin the same version of a shared package.
# Only uv is needed here, not an up-to-date venv: after an edit of pyproject.toml the venv
# cannot be installed until the lock has been made again.
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$$(grep -m1 '^uv==' $(DEV_LOCK) | cut -d' ' -f1)"

lock: | $(BIN)/uv
	$(COMPILE) --extra dev $(UPGRADE_FLAGS) -o $(DEV_LOCK)
	$(COMPILE) -c $(DEV_LOCK) -o $(LOCK)
	@$(MAKE) --no-print-directory $(BIN)/activate

upgrade: UPGRADE_FLAGS = $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)
upgrade: lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
