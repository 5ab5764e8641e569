"""The local Triton server the quality runs (`make eval`, `make eval-sts`) start: prepared models, free ports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from instruct_embed.catalog import get_spec
from instruct_embed.repository.configs import triton_models
from instruct_embed.server import LocalTritonServer, ServerOptions
from instruct_embed.server.process import free_port


def eval_server(models: Sequence[str], repository: Path, log_name: str) -> LocalTritonServer:
    """A server (not started: use it as a context manager) for `models`, already rendered into `repository`."""
    options = ServerOptions(
        repository=repository,
        models=tuple(name for model in models for name in triton_models(get_spec(model))),
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=repository.parent / log_name,
    )
    return LocalTritonServer(options)
