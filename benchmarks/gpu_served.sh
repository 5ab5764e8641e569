#!/usr/bin/env bash
# One shot on a GPU host that has torch, transformers, tokenizers, numpy, grpcio and sentence-transformers but none
# of our pins, from a copy of this tree with the pack (`python -m benchmarks.gpu_served pack` here, then carry
# .cache/gpu-pack): installs the bundled Triton from the carried wheel into a scratch folder, puts the carried
# pure-Python packages and this tree on PYTHONPATH, and measures (benchmarks/gpu_served.py). Extra arguments go to
# `gpu_served run` (e.g. --repeats 1). Writes $OUT/gpu_served.json (OUT: default this folder).
set -euo pipefail
cd "$(dirname "$0")/.."
pack="$(realpath "${PACK:-.cache/gpu-pack}")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
python3 -m pip install --no-deps --no-index --quiet --target "$scratch/site" "$pack"/wheels/nvidia_pytriton-*.whl
export PYTHONPATH="$PWD:$pack/site:$scratch/site${PYTHONPATH:+:$PYTHONPATH}"
export INSTRUCT_EMBED_HOME="$scratch/home" TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m benchmarks.gpu_served run --pack "$pack" --workdir "$scratch/work" --out "${OUT:-.}/gpu_served.json" "$@"
