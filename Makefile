# The two commands of the quick start: `make repro` and `make test`. Both set up .venv first,
# once: a stamp file records that the pinned requirements are installed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test lint bench
repro: $(VENV)/.installed
	dvc repro

test: $(VENV)/.installed-dev
	pytest

lint: $(VENV)/.installed-dev
	ruff check src tests bench

bench: $(VENV)/.installed
	python bench/speed.py

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@
