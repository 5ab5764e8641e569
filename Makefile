# instruct-embed: run `make help` for the targets.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= multilingual-e5-small

.DEFAULT_GOAL := help
.PHONY: help setup serve test test-unit lint format

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/instruct-embed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/instruct-embed ## create .venv with the pinned stack (CPU torch, tritonserver from nvidia-pytriton)

serve: setup ## prepare MODEL (default multilingual-e5-small), start a local Triton server, embed an example
	$(BIN)/instruct-embed serve --model $(MODEL)

test: setup ## run every test: unit, real local models, a real tritonserver on loopback
	$(BIN)/python -m pytest

test-unit: setup ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: eval
eval: setup ## SciFact nDCG@10 through a local server (e5-small: card/none/swapped, MiniLM); rewrites benchmarks/scifact.md
	$(BIN)/python -m instruct_embed.benchmarks.run_scifact
