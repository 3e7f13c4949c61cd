# Every target sets up .venv by itself: a machine with Python 3.11+ and make is enough.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: render test lint typecheck bench schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

render: $(STAMP)  ## render the example fleet in clusters/ into out/
	$(BIN)/everest-render render

test: $(STAMP)  ## the whole suite, as CI runs it: tests, lint, types
	$(BIN)/python -m pytest
	$(BIN)/ruff check everest_render tests benchmarks
	$(BIN)/mypy


lint: $(STAMP)
	$(BIN)/ruff check everest_render tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)  ## render a 1,000-cluster fleet and compare with a PyYAML C parse+dump baseline
	$(BIN)/python benchmarks/bench.py --clusters 1000

schemas: $(STAMP)  ## regenerate the providers' and the Instance input's strict schemas from the vendored CRDs
	$(BIN)/everest-render schemas
	$(BIN)/python -m everest_render.upstream_schema

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
