# Every target sets up .venv by itself, from the committed lock: a machine with Python 3.11+
# and make is enough. The lock (requirements-dev.lock, with hashes) is the only source of
# versions on this path; pyproject.toml keeps the ranges for people installing the library.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# Resolve for every Python and platform the package supports, not only this machine's.
LOCK_FLAGS := --universal --generate-hashes --python-version 3.11 --quiet

.PHONY: render test pytest lint typecheck test-latest lock bench prepare schemas clean fuzz

$(STAMP): requirements-dev.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r requirements-dev.lock
	# The package itself, editable, built with the locked hatchling (no isolated build env
	# that would fetch an unpinned backend).
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

render: $(STAMP)  ## render the example fleet in clusters/ into out/
	$(BIN)/everest-render render

# The suite runs on every CPU the machine gives this process (pytest-xdist; the cgroup quota
# counts, as for rendering); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= $$($(BIN)/python -c 'from everest_render.parallel import available_cpus as n; c = n(); print(c if c > 1 else 0)')

# pytest, ruff and mypy all run; the target fails if any failed and says which.
test: $(STAMP)  ## the whole suite, as CI runs it: tests, lint, types
	@failed=""; \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) || failed="$$failed pytest"; \
	$(BIN)/ruff check everest_render tests benchmarks || failed="$$failed ruff"; \
	$(BIN)/mypy || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed" >&2; exit 1; fi; \
	echo "make test: pytest, ruff and mypy passed"

# The fuzz suite for longer, random (make test runs a few fixed examples): FUZZ_EXAMPLES per target.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)  ## mutate valid repositories for a while; any traceback or exit other than 0/3 fails
	EVEREST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py tests/test_cache.py -p no:cacheprovider --hypothesis-show-statistics

pytest: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check everest_render tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite against the newest versions pyproject.toml allows, in a venv of its own, so a
# maintainer sees an upstream break before users do. Never used by CI's gate.
test-latest:  ## the suite against the newest allowed dependency versions
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip --disable-pip-version-check --quiet install --upgrade -e '.[dev]'
	@failed=""; \
	.venv-latest/bin/python -m pytest -p no:cacheprovider || failed="$$failed pytest"; \
	.venv-latest/bin/ruff check everest_render tests benchmarks || failed="$$failed ruff"; \
	.venv-latest/bin/mypy --cache-dir .venv-latest/.mypy_cache || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then echo "make test-latest: failed:$$failed" >&2; exit 1; fi

# Refresh both locks from pyproject.toml's ranges with the locked uv; review the diff.
lock: $(STAMP)  ## re-resolve requirements.lock (runtime) and requirements-dev.lock (runtime + dev)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile $(LOCK_FLAGS) --extra dev pyproject.toml -o requirements-dev.lock

# What a build prepares (the Dockerfile does the same): the built-in templates and dataclass
# methods compiled into the package (render/prepared.py, prepared_code.py), and bytecode; in a
# checkout also the stat record of its files (package_files.py), in place of a wheel's RECORD.
# Timestamp-checked here: a checkout gets edited. The benchmarks measure the prepared package.
prepare: $(STAMP)  ## compile the built-in templates, dataclass methods and bytecode, as an image build does
	$(BIN)/python -m everest_render.prepare
	$(BIN)/python -m compileall -q everest_render

# Ratios measured in the same round (docs: benchmarks/bench.py); niced, for a shared machine.
bench: prepare  ## fleets of 100, 1,000 and 10,000 clusters: full, incremental and diff against the floor (and kustomize up to 1,000); the plugin's cold start (~10 min on 2 cores)
	$(BIN)/python benchmarks/bench.py --clusters 100 1000 10000

schemas: $(STAMP)  ## regenerate the providers' and the Instance input's strict schemas from the vendored CRDs
	$(BIN)/everest-render schemas
	$(BIN)/python -m everest_render.authoring.instance_schema

clean:
	rm -rf $(VENV) .venv-latest .pytest_cache .mypy_cache .ruff_cache
