"""Shared by the reliability tests: servers with their own options, an in-process gateway, golden vectors.

The golden vectors (tests/data/golden-multilingual-e5-small.json) are the PyTorch reference's, written by
`python -m tests.reliability_support` from the prepared model; tests compare served vectors to them by cosine.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from instruct_embed.repository.configs import ServingOptions
from instruct_embed.runtime.contract import STEPS, step_name
from instruct_embed.server import LocalTritonServer, ServerOptions
from instruct_embed.server.process import free_port

E5 = "multilingual-e5-small"
GOLDEN_FILE = Path(__file__).parent / "data" / f"golden-{E5}.json"
GOLDEN_TEXTS = (
    ("query", "how much protein should a female eat"),
    ("query", "¿Cuál es la capital de Francia?"),
    ("document", "Paris est la capitale de la France."),
    ("document", "As a general guideline, the CDC's average requirement of protein for women is 46 grams per day."),
)
PREFIX = {"query": "query: ", "document": "passage: "}


@dataclass(frozen=True)
class Golden:
    role: str
    text: str
    vector: np.ndarray


def golden() -> list[Golden]:
    entries = json.loads(GOLDEN_FILE.read_text())["vectors"]
    return [Golden(e["role"], e["text"], np.asarray(e["embedding"], dtype=np.float32)) for e in entries]


def write_golden() -> Path:
    """Embed GOLDEN_TEXTS with the PyTorch reference of the prepared model and write GOLDEN_FILE."""
    from instruct_embed.catalog import get_spec
    from instruct_embed.export.reference import ReferenceEmbedder
    from instruct_embed.prepare import prepare_model

    prepared = prepare_model(E5)
    reference = ReferenceEmbedder(get_spec(E5), prepared.hf_dir)
    vectors = reference.embed([PREFIX[role] + text for role, text in GOLDEN_TEXTS])
    payload = {
        "model": E5,
        "source": "export.reference.ReferenceEmbedder (PyTorch, the model card's pooling) on the prepared weights",
        "vectors": [
            {"role": role, "text": text, "embedding": [round(float(x), 7) for x in vector]}
            for (role, text), vector in zip(GOLDEN_TEXTS, vectors, strict=True)
        ],
    }
    GOLDEN_FILE.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
    return GOLDEN_FILE


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def own_server(
    root: Path,
    serving: ServingOptions = ServingOptions(cpu_precision="fp32"),  # fp32's numbers on any CPU
    exit_timeout_s: int = 30,
    restart_dead_stubs: bool = True,
) -> LocalTritonServer:
    """multilingual-e5-small rendered with `serving` into `root`, served on free loopback ports (not started)."""
    from instruct_embed.prepare import PrepareOptions, prepare_model

    repository = root / "repository"
    prepare_model(E5, PrepareOptions(repository=repository, serving=serving))
    options = ServerOptions(
        repository=repository,
        models=(E5, *(step_name(E5, step) for step in STEPS)),
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=root / "tritonserver.log",
        exit_timeout_s=exit_timeout_s,
        restart_dead_stubs=restart_dead_stubs,
    )
    return LocalTritonServer(options)


@contextlib.contextmanager
def running_gateway(triton_grpc_url: str, **settings: Any) -> Iterator[str]:
    """The gateway in this process (uvicorn in a thread) on a free loopback port; yields its base URL."""
    import uvicorn

    from instruct_embed.gateway.app import GatewaySettings, create_app

    port = free_port()
    app = create_app(GatewaySettings(triton_grpc_url=triton_grpc_url, **settings))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


if __name__ == "__main__":
    print(write_golden())
