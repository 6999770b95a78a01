# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every dependency pinned at the version the suite last passed with; `make lock` rewrites it.
LOCK := constraints.txt

.PHONY: run test lint typecheck pytest bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev]'
	touch $@ $(VENV)/.installed

# The newest versions pyproject.toml allows, resolved in a scratch venv (so nothing left over
# in .venv gets pinned), written to the lock; the next make installs them.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install -q --upgrade pip
	$(VENV)-lock/bin/pip install -q -e '.[dev]'
	{ echo "# Every dependency of runledger[dev], pinned: written by \`make lock\`, installed by make."; \
	  $(VENV)-lock/bin/pip freeze --exclude-editable; } > $(LOCK)
	rm -rf $(VENV)-lock

# `make run PORT=9000` picks the port; without PORT, serve uses $$RUNLEDGER_PORT or 8000.
run: $(VENV)/.installed
	$(BIN)/runledger serve $(if $(PORT),--port $(PORT))

LINT_PATHS := ledger projections api executor cli runledger tests bench examples

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(VENV)-lock .runledger .mypy_cache .ruff_cache
