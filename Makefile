# Two promises: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_TEST := $(VENV)/.installed-test
# Every install takes its versions from this lock (all dependencies, pinned); `make lock`
# regenerates it from pyproject.toml. A newer lock (or pyproject.toml) reinstalls.
CONSTRAINTS := requirements/constraints.txt
PIP_INSTALL := $(BIN)/pip install --quiet -c $(CONSTRAINTS)
# uv's `pip compile` rather than pip-tools: it resolves for a named target (Python 3.11 on
# x86_64 Linux, what the machines and CI run) whatever Python runs it, needs no matching pip
# (pip-tools breaks with new pip releases, and the venv's pip is upgraded), and takes seconds.
# Pinned, so the same pyproject.toml and index give the same file.
UV_VERSION := 0.13.9

.PHONY: demo test typecheck suite lint format serve clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP_DEMO): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(STAMP_TEST): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	$(PIP_INSTALL) -e '.[test]'
	touch $@ $(STAMP_DEMO)

# The runtime dependencies and the `test` and `postgres` extras, resolved afresh (--upgrade:
# the old lock is not consulted) to the newest versions pyproject.toml allows.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --extra test --extra postgres \
		--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
		--upgrade --quiet --custom-compile-command 'make lock' -o $(CONSTRAINTS)

demo: $(STAMP_DEMO)
	$(BIN)/newsletter --config config.toml demo

test: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# mypy beside the suite: a cold type check takes ~8 s of one core, the suite mostly uses one.
	$(MAKE) --no-print-directory -j2 typecheck suite

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

# The suite spreads over the cores (pytest-xdist): every test has its own temp folder, SQLite
# file and PostgreSQL schema, and binds port 0. A file's tests stay in one worker, in their
# order (loadfile), as its module-scoped fixtures expect. PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

suite: $(STAMP_TEST)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: $(STAMP_TEST)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

serve: $(STAMP_DEMO)
	$(BIN)/newsletter --config config.toml db upgrade
	$(BIN)/newsletter --config config.toml serve

clean:
	rm -rf $(VENV) subscribers.db outbox site .pytest_cache .ruff_cache
