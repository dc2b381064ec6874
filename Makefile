# grand_bench: every target uses the project's own virtual environment (.venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Here the raw benchmark files are mirrored beside the project; users with internet need not set it.
export GRAND_BENCH_RAW ?= $(abspath ../shared/data)

.PHONY: install test test-fast lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# The CPU wheel first: an unpinned torch would pull several GB of CUDA packages.
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev]"
	touch $@

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

lint: install
	$(VENV)/bin/ruff check grand_bench tests scripts train.py
	$(VENV)/bin/ruff format --check grand_bench tests scripts train.py

format: install
	$(VENV)/bin/ruff check --fix grand_bench tests scripts train.py
	$(VENV)/bin/ruff format grand_bench tests scripts train.py

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
