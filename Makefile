# Quick start:  make demo      (the main job on bundled demo data and tiny local models)
#               make test      (lint + the default test tier: minutes)
#               make test-all  (the default tier, then the slow and browser tiers; what CI runs)
# Both create .venv on first use. torch comes from the CPU machine's local wheel cache.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1
# tiers by marker: the default tier leaves out slow (minutes-long) and browser (headless chromium) tests
PYTEST_ARGS ?= -m "not gpu and not slow and not browser"
PYTEST_SLOW_ARGS ?= -m "(slow or browser) and not gpu"

$(BIN)/mmstar: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,hf,plots,review,postgres,openai,serve]"
	touch $@

.PHONY: setup demo test test-slow test-all lint
setup: $(BIN)/mmstar

demo: setup
	$(BIN)/mmstar demo

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -q $(PYTEST_SLOW_ARGS)

test-all: test test-slow
