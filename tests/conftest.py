"""Shared fixtures: a test cache home, prepared real models and one real tritonserver per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Prepared models are reused across runs (CI starts from a fresh clone, so it builds them once).
os.environ.setdefault("INSTRUCT_EMBED_HOME", str(REPO_ROOT / ".cache" / "test-home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SERVED_MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def prepared_models() -> dict[str, object]:
    """The two real local models, prepared (weights, validated ONNX, rendered repository)."""
    from instruct_embed.prepare import PrepareOptions, prepare_model

    return {name: prepare_model(name, PrepareOptions()) for name in SERVED_MODELS}


@pytest.fixture(scope="session")
def triton_server(prepared_models: dict[str, object]) -> Iterator[object]:
    """A real tritonserver on free loopback ports serving the prepared repository."""
    from instruct_embed.paths import repository_dir
    from instruct_embed.server import LocalTritonServer, ServerOptions
    from instruct_embed.server.process import free_port

    repository = repository_dir()
    models = tuple(f"{n}{s}" for n in SERVED_MODELS for s in ("", "_preprocess", "_encoder"))
    options = ServerOptions(
        repository=repository,
        models=models,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=repository.parent / "tritonserver-tests.log",
        exit_timeout_s=5,
    )
    server = LocalTritonServer(options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
