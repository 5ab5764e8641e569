"""One KServe v2 request to the ensemble over tritonclient HTTP or gRPC, with typed errors."""

from __future__ import annotations

import importlib
from typing import Any

from tritonclient.utils import InferenceServerException

from .errors import EmbedError, InvalidRequest, ModelNotFound, ServerError, ServerUnavailable

PROTOCOLS = ("http", "grpc")
DEFAULT_URLS = {"http": "127.0.0.1:8000", "grpc": "127.0.0.1:8001"}


def triton_module(protocol: str, aio: bool = False) -> Any:
    """tritonclient's module for `protocol`: the blocking one, or its asyncio twin."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    return importlib.import_module(f"tritonclient.{protocol}{'.aio' if aio else ''}")


def failures(protocol: str, aio: bool) -> tuple[type[BaseException], ...]:
    """What a failed tritonclient call raises: Triton's answer, or the connection's own failure (refused, reset,
    timed out: OSErrors, asyncio's TimeoutError too). aiohttp's, such as a keep-alive connection the server
    closed, are not OSErrors; the aio HTTP client lets them through."""
    if protocol == "http" and aio:
        import aiohttp

        return InferenceServerException, OSError, aiohttp.ClientError
    return InferenceServerException, OSError


# Refusals that end when the load or the fault does: a full queue, a queue wait that ran out, a model process
# that died (until the model is reloaded), a server shutting down (a restart or another replica answers).
TRANSIENT = ("exceeds maximum queue", "request timeout expired", "is not healthy", "server is stopping")


def classify(error: InferenceServerException, model: str) -> EmbedError:
    """Map Triton's error to a typed one, keeping the server's message."""
    message = error.message() or str(error)
    status = str(error.status() or "")
    lowered = message.lower()
    if "unknown model" in lowered or ("model" in lowered and "not found" in lowered) or "not ready" in lowered:
        return ModelNotFound(f"model {model!r} is not served: {message}", message)
    if "unavailable" in status.lower() or "502" in status or "503" in status or any(t in lowered for t in TRANSIENT):
        return ServerUnavailable(f"server unavailable: {message}", message)
    if "failed to connect" in lowered or "connection" in lowered or "deadline" in lowered or "timed out" in lowered:
        return ServerUnavailable(f"server unreachable: {message}", message)
    if "internal" in status.lower() or status == "500":
        return ServerError(f"server error: {message}", message)
    return InvalidRequest(message, message)
