"""Client-side round robin against three real tritonservers serving the same repository: the SDK (HTTP and gRPC)
and the gateway spread requests over all three, and one stopped mid-run costs no request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest
import tritonclient.http as triton_http

from instruct_embed.catalog import get_spec
from instruct_embed.client import EmbedClient
from instruct_embed.paths import repository_dir
from instruct_embed.repository.configs import triton_models
from instruct_embed.server import LocalTritonServer, ServerOptions
from instruct_embed.server.process import free_port
from tests.reliability_support import running_gateway

pytestmark = pytest.mark.integration

MINILM = "all-MiniLM-L6-v2"
REPLICAS = 3
TEXTS = [f"replica check {i}: a short sentence about mountains" for i in range(40)]


def _server(index: int) -> LocalTritonServer:
    repository = repository_dir()
    options = ServerOptions(
        repository=repository,
        models=triton_models(get_spec(MINILM)),
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=repository.parent / f"tritonserver-replica-{index}.log",
        exit_timeout_s=5,
    )
    return LocalTritonServer(options)


@pytest.fixture
def replicas(prepared_models: dict[str, object]) -> Iterator[list[LocalTritonServer]]:
    servers = [_server(i) for i in range(REPLICAS)]
    try:
        for server in servers:  # from this thread: the kernel ties each server's life to the thread that started it
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def _served(server: LocalTritonServer) -> int:
    """Successful requests the server's ensemble answered (Triton's own statistics)."""
    client = triton_http.InferenceServerClient(server.http_url.removeprefix("http://"))
    try:
        stats = client.get_inference_statistics(model_name=MINILM)
    finally:
        client.close()
    return int(stats["model_stats"][0]["inference_stats"]["success"]["count"])


def _urls(servers: list[LocalTritonServer], protocol: str) -> str:
    return ",".join((s.http_url if protocol == "http" else s.grpc_url).removeprefix("http://") for s in servers)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_sdk_spreads_requests_and_survives_a_replica_stopped_mid_run(
    replicas: list[LocalTritonServer], protocol: str
) -> None:
    with EmbedClient(_urls(replicas[:1], protocol), protocol) as alone:
        expected = alone.encode(MINILM, TEXTS)
    before = [_served(s) for s in replicas]
    with EmbedClient(_urls(replicas, protocol), protocol, concurrency=1) as client:
        first = np.concatenate([client.encode(MINILM, [t]) for t in TEXTS[:15]])
        shares = [_served(s) - b for s, b in zip(replicas, before, strict=True)]
        assert all(share >= 4 for share in shares), f"each replica gets a share of 15 requests: {shares}"

        replicas[1].stop()  # stopped while the client holds connections to it
        rest = np.concatenate([client.encode(MINILM, [t]) for t in TEXTS[15:]])
    got = np.concatenate([first, rest])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # every request answered, each by some replica


def test_the_gateway_spreads_requests_over_the_replicas(replicas: list[LocalTritonServer]) -> None:
    with running_gateway(_urls(replicas, "grpc")) as gateway:
        api = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
        before = [_served(s) for s in replicas]
        for text in TEXTS[:12]:
            api.embeddings.create(model=MINILM, input=[text])
        shares = [_served(s) - b for s, b in zip(replicas, before, strict=True)]
        assert all(share >= 3 for share in shares), f"each replica gets a share of 12 requests: {shares}"

        replicas[0].stop()
        answers: list[Any] = [api.embeddings.create(model=MINILM, input=[t]) for t in TEXTS[12:24]]
        assert all(len(a.data) == 1 and len(a.data[0].embedding) == 384 for a in answers), "no failed request"
