#!/usr/bin/env bash
# Starts tritonserver with the compose command's flags plus one --load-model per name in INSTRUCT_EMBED_MODELS
# (comma- or space-separated catalog names). With --model-control-mode=explicit nothing else loads; loading a
# model's ensemble also loads its _preprocess and _encoder steps, so the ensemble names are all that is needed.
#
# Beside it runs the stub watchdog (instruct_embed/server/watch.py): Triton 2.51 does not restart a Python model
# process that died, and its health endpoints stay 200 while every request to that model fails; the watchdog
# reloads such a model. STUB_WATCHDOG=false leaves it out. This script stays the container's first process:
# it passes SIGTERM / SIGINT on to tritonserver (which lets in-flight requests finish) and exits with its code.
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

if [[ "${STUB_WATCHDOG:-true}" != "true" ]]; then
    exec tritonserver "$@" "${load_args[@]}"
fi

http_port=8000
for arg in "$@"; do
    [[ "${arg}" == --http-port=* ]] && http_port="${arg#--http-port=}"
done

tritonserver "$@" "${load_args[@]}" &
server=$!
trap 'kill -TERM "${server}" 2>/dev/null || true' TERM INT

# The image keeps the watchdog's code apart from the Python models' (PYTHONPATH for this process only); run from /
# so that nothing in the working folder shadows it (`python3 -m` looks there first).
(
    cd /
    export PYTHONPATH="${WATCHDOG_PYTHONPATH:-/opt/instruct-embed/python}${PYTHONPATH:+:${PYTHONPATH}}"
    exec python3 -m instruct_embed.server.watch --server-pid "${server}" --http-url "127.0.0.1:${http_port}"
) &
watchdog=$!

# `wait` returns early when a trapped signal arrives; wait again until tritonserver itself has ended.
code=0
while true; do
    wait "${server}" && code=0 || code=$?
    kill -0 "${server}" 2>/dev/null || break
done
kill -TERM "${watchdog}" 2>/dev/null || true
wait "${watchdog}" 2>/dev/null || true
exit "${code}"
