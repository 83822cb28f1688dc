# The two commands of the quick start: `make repro` and `make test`. Both set up .venv first,
# once: a stamp file records that the pinned requirements are installed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: repro test lint bench screenshot team-up team-down
repro: $(VENV)/.installed
	dvc repro

test: $(VENV)/.installed-dev
	pytest

lint: $(VENV)/.installed-dev
	ruff check src tests bench tools
	lint-imports

# The machine's ceiling, the engine against it and the article's way, and the pipeline stage
# by stage (about 20 minutes; run it on a quiet machine).
bench: $(VENV)/.installed
	python bench/speed.py --pipeline

# A headless Chromium's picture of `mlflow ui` (Debian's chromium, installed if missing).
screenshot: $(VENV)/.installed
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	python tools/mlflow_screenshot.py

# The team stack: PostgreSQL, an S3 server and `mlflow server` on loopback (README, "Team
# setup"); `team-up` also points this clone's DVC remote `team` at it (.dvc/config.local).
team-up: $(VENV)/.installed-team
	python -m lstm_overfit.infrastructure.team up --project .

team-down: $(VENV)/.installed-team
	python -m lstm_overfit.infrastructure.team down

$(VENV)/.installed: requirements.txt pyproject.toml setup.py src/lstm_overfit/engine/gemm.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-team: $(VENV)/.installed requirements-team.txt
	$(BIN)/python -m pip install --quiet -r requirements-team.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-team.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@
