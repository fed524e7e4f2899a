# leadscore: two commands on a fresh machine -> `make demo`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := demo
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: help setup demo test test-fast lint format bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install leadscore with its dependencies

demo: $(STAMP)  ## run the whole job end to end on built-in sample data
	$(BIN)/python -m leadscore.demo --workdir $(DEMO)

test: $(STAMP)  ## run the whole test suite
	$(BIN)/python -m pytest -q

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
