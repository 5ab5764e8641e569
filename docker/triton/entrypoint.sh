#!/usr/bin/env bash
# Starts tritonserver with the compose command's flags plus one --load-model per name in INSTRUCT_EMBED_MODELS
# (comma- or space-separated catalog names). With --model-control-mode=explicit nothing else loads; loading a
# model's ensemble also loads its _preprocess and _encoder steps, so the ensemble names are all that is needed.
set -euo pipefail

models="${INSTRUCT_EMBED_MODELS:-}"
if [[ -z "${models//[, ]/}" ]]; then
    echo "INSTRUCT_EMBED_MODELS is empty: name the models to serve (see .env.example)" >&2
    exit 64
fi

load_args=()
for model in ${models//,/ }; do
    load_args+=("--load-model=${model}")
done

exec tritonserver "$@" "${load_args[@]}"
