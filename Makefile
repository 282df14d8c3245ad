# Quick start:  make demo   (the main job on bundled demo data and tiny local models)
#               make test   (lint + the whole CPU test suite)
# Both create .venv on first use. torch comes from the CPU machine's local wheel cache.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?= -m "not gpu"

$(BIN)/mmstar: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev,hf,plots,review,postgres,openai]"
	touch $@

.PHONY: setup demo test lint
setup: $(BIN)/mmstar

demo: setup
	$(BIN)/mmstar demo

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
