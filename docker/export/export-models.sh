#!/usr/bin/env bash
# Prepares every model named in INSTRUCT_EMBED_MODELS into the repository at MODEL_REPOSITORY_DIR:
#   instruct-embed prepare MODEL --target EXPORT_TARGET   (weights -> validated ONNX -> rendered models)
#   instruct-embed build-engine MODEL                     (tensorrt target only: ONNX -> plan, parity-checked)
# Each step skips work whose output is already up to date, so re-running after adding a model is cheap.
# Arguments given to the container replace this loop and run `instruct-embed ARGS...` instead.
set -euo pipefail

if [[ $# -gt 0 ]]; then
    exec instruct-embed "$@"
fi

models="${INSTRUCT_EMBED_MODELS:-}"
if [[ -z "${models//[, ]/}" ]]; then
    echo "INSTRUCT_EMBED_MODELS is empty: name the models to export (see .env.example)" >&2
    exit 64
fi
target="${EXPORT_TARGET:-tensorrt}"
repository="${MODEL_REPOSITORY_DIR:-/models}"
timing_cache="${INSTRUCT_EMBED_TIMING_CACHE:-/cache/tensorrt/timing.cache}"
mkdir -p "$repository" "$(dirname "$timing_cache")"

for model in ${models//,/ }; do
    trust=()
    if [[ "${TRUST_REMOTE_CODE:-false}" == "true" ]]; then
        trust=(--trust-remote-code)
    fi
    prepare=(prepare "$model" --target "$target" --repository "$repository" "${trust[@]}")
    echo "==> instruct-embed ${prepare[*]}"
    instruct-embed "${prepare[@]}"

    if [[ "$target" == "tensorrt" ]]; then
        build=(build-engine "$model" --repository "$repository" --timing-cache "$timing_cache" "${trust[@]}")
        if [[ -n "${GPU_INSTANCES:-}" ]]; then
            build+=(--instances-per-gpu "$GPU_INSTANCES")
        fi
        if [[ -n "${ENGINE_PRECISION:-}" ]]; then
            build+=(--precision "$ENGINE_PRECISION")
        fi
        echo "==> instruct-embed ${build[*]}"
        instruct-embed "${build[@]}"
    fi
done
echo "Repository ready at $repository: ${models}"
