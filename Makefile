# leadscore: two commands on a fresh machine -> `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: help setup demo test test-fast lint format bench clean chromium

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'  # spark: its tests run in local mode
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install leadscore with its dependencies

demo: $(STAMP)  ## run the whole job end to end on built-in sample data
	$(BIN)/python -m leadscore.demo --workdir $(DEMO)

test: $(STAMP) chromium  ## run the whole test suite
	$(BIN)/python -m pytest -q

# the report's browser test renders report.html in headless Chromium; without apt-get (or
# without root or passwordless sudo) it is skipped, saying why
chromium:  ## install Debian's chromium for the browser test when it is missing
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  echo "installing chromium for the browser test (apt-get)"; \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    chromium >/dev/null; } \
	  || echo "note: could not install chromium; the browser test will be skipped"; \
	else \
	  echo "note: no apt-get to install chromium; the browser test will be skipped"; \
	fi

test-fast: $(STAMP)  ## the inner loop: tests that are neither slow nor e2e
	$(BIN)/python -m pytest -q -m "not slow and not e2e"

lint: $(STAMP)  ## ruff check, format check, no file over 1 MB in src docs configs tests notebooks
	$(BIN)/ruff check src tests benchmarks .ci
	$(BIN)/ruff format --check src tests benchmarks .ci
	$(BIN)/python .ci/check_sizes.py

format: $(STAMP)  ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix src tests benchmarks .ci
	$(BIN)/ruff format src tests benchmarks .ci

bench: $(STAMP)  ## run benchmarks/ and append figures to docs/benchmarks.md
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:  ## remove demo outputs and caches (keeps .venv)
	rm -rf $(DEMO) .pytest_cache .ruff_cache
