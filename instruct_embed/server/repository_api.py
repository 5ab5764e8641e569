"""Triton's readiness and model repository API over HTTP (explicit model control), with the standard library only.

Used to reload a model whose Python process died, and to drain the ensembles before the server stops: Triton
refuses new step requests as soon as it is signalled, so an ensemble request still between its preprocess and
encoder steps would fail; unloading the ensembles first lets every accepted request finish.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

RELOAD_PARAMETER = "instruct_embed_reloaded_at"  # set by reload(); read by no model

# What a failed call raises: urllib's errors are OSErrors; a malformed answer raises ValueError.
APIError = (OSError, ValueError)


def _call(http_url: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> Any:
    request = urllib.request.Request(f"http://{http_url}{path}", data=body, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def server_ready(http_url: str) -> bool:
    """Whether Triton answers 200 on its readiness endpoint (every loaded model ready, with --strict-readiness)."""
    try:
        with urllib.request.urlopen(f"http://{http_url}/v2/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def index(http_url: str) -> dict[str, str]:
    """Every model in the repository and its state (READY, UNAVAILABLE, LOADING, UNLOADING)."""
    return {entry["name"]: entry.get("state", "") for entry in _call(http_url, "/v2/repository/index", b"{}")}


def marked_for_reload(config: dict[str, Any]) -> dict[str, Any]:
    """`config` (a model's served config, as JSON) with RELOAD_PARAMETER set to a new value."""
    parameters = {**config.get("parameters", {}), RELOAD_PARAMETER: {"string_value": str(time.time_ns())}}
    return {**config, "parameters": parameters}


def reload(http_url: str, name: str, timeout: float = 120.0) -> None:
    """Load the loaded model `name` again, with fresh instances (new Python processes), whatever its files.

    A plain load is a no-op for a loaded model whose files did not change, and so is a load that carries the
    very config the model runs with. The config sent is that one plus a parameter that no model reads, whose
    value changes with every reload: Triton then reloads. It needs no write access to the repository (compose
    mounts it read-only), and Triton swaps the new instances in when they are ready: the model, and the
    ensemble that uses it, stay loaded throughout.
    """
    config = marked_for_reload(_call(http_url, f"/v2/models/{name}/config"))
    body = json.dumps({"parameters": {"config": json.dumps(config)}}).encode()
    _call(http_url, f"/v2/repository/models/{name}/load", body, timeout)


def unload(http_url: str, name: str) -> None:
    """Start unloading `name`: new requests are refused, in-flight ones finish first."""
    _call(http_url, f"/v2/repository/models/{name}/unload", b"{}")


def ensembles(http_url: str) -> list[str]:
    """The READY models that are ensembles."""
    ready = [name for name, state in index(http_url).items() if state == "READY"]
    return [name for name in ready if _call(http_url, f"/v2/models/{name}/config").get("platform") == "ensemble"]


def drain(http_url: str, timeout_s: float) -> bool:
    """Unload the ensembles and wait (at most `timeout_s`) until their in-flight requests are done.

    Returns True when every ensemble finished unloading in time. Raises APIError when the server cannot be
    asked (it is gone, or runs without explicit model control).
    """
    names = ensembles(http_url)
    for name in names:
        unload(http_url, name)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = index(http_url)
        if all(states.get(name) not in ("READY", "UNLOADING") for name in names):
            return True
        time.sleep(0.1)
    return False
