"""Faults on a server of this module's own: a model's Python process killed, the server restarted, SIGTERM.

Triton 2.51 does not restart a Python stub that died, and keeps reporting the server and the model ready; every
request to the model then fails after about a second with "Stub process '<instance>' is not healthy". The
local server's readiness and the gateway's see it; a reload (the SDK's, or the local server's watchdog, on its
own) brings the model back. The tests run in file order: the last one stops the server.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from instruct_embed.client import EmbedClient, EmbedError, ModelNotFound, ServerUnavailable
from instruct_embed.runtime.contract import ENCODER, step_name
from instruct_embed.server import LocalTritonServer
from instruct_embed.server.stubs import is_alive, stubs_of
from tests.reliability_support import E5, cosine, golden, own_server, running_gateway

pytestmark = pytest.mark.integration


def not_healthy(model: str) -> re.Pattern[str]:
    """Triton's error for a request that reached a dead process of `model`, whichever instance it was."""
    return re.compile(rf"Stub process '{re.escape(model)}_0_\d+' is not healthy")


@dataclass
class Running:
    server: LocalTritonServer


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    state = Running(own_server(tmp_path_factory.mktemp("faults"), exit_timeout_s=30).start())
    try:
        yield state
    finally:
        state.server.stop()


def kill_stubs(server: LocalTritonServer, model: str) -> list[int]:
    """SIGKILL every process of `model` (the encoder runs two instances by default): the step is dead."""
    assert server.process is not None
    stubs = [s for s in stubs_of(server.process.pid) if s.model == model]
    assert stubs, f"no process of {model}"
    for stub in stubs:
        os.kill(stub.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(is_alive(stub.pid) for stub in stubs):
        assert time.monotonic() < deadline, "a stub outlived SIGKILL"
        time.sleep(0.05)
    return [stub.pid for stub in stubs]


def refusals_during(action: Callable[[], None], url: str) -> list[EmbedError]:
    """Run `action` while another client keeps asking; what that client was refused (the model never left:
    no ModelNotFound among them)."""
    refused: list[EmbedError] = []
    done = threading.Event()

    def ask() -> None:
        with EmbedClient(url, "http", retries=0) as client:
            while not done.is_set():
                try:
                    client.encode(E5, ["during the reload"])
                except EmbedError as error:
                    refused.append(error)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        time.sleep(0.5)
        action()
    finally:
        done.set()
        asking.join(timeout=60)
    return refused


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def raw(protocol: str, url: str, text: str) -> np.ndarray:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(url)
    try:
        tensor = module.InferInput("TEXT", [1, 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
        return client.infer(E5, [tensor]).as_numpy("EMBEDDING")
    finally:
        client.close()


def test_a_dead_encoder_process_is_a_clear_error_seen_by_readiness_and_a_reload_brings_it_back(
    running: Running,
) -> None:
    server = running.server
    assert server.watchdog is not None
    server.watchdog.stop()  # this test shows the fault itself, and the manual recovery
    try:
        kill_stubs(server, step_name(E5, ENCODER))
        expected = not_healthy(step_name(E5, ENCODER))
        for protocol, url, status in (("http", server.http_url, "500"), ("grpc", server.grpc_url, "INTERNAL")):
            with pytest.raises(InferenceServerException) as raised:
                raw(protocol, url, "how tall is mont blanc")
            assert expected.search(str(raised.value.message())) and status in str(raised.value.status())
        # Triton itself still says ready; the local server's readiness and the gateway's do not.
        assert http_status(f"http://{server.http_url}/v2/health/ready") == 200
        assert http_status(f"http://{server.http_url}/v2/models/{E5}_encoder/ready") == 200
        assert not server.is_ready()
        with running_gateway(server.grpc_url) as gateway:
            assert http_status(f"{gateway}/health/ready") == 503
        with EmbedClient(server.grpc_url, "grpc", retries=0) as client:
            with pytest.raises(ServerUnavailable, match="is not healthy"):
                client.encode(E5, ["x"])
            meanwhile = refusals_during(lambda: client.reload(E5), server.http_url)
            assert meanwhile and all(isinstance(e, ServerUnavailable) for e in meanwhile), meanwhile
            reference = golden()[0]
            assert cosine(client.encode(E5, [reference.text], role="query")[0], reference.vector) >= 0.9999
        assert server.is_ready()
    finally:
        server.watchdog.start()


@pytest.mark.parametrize("step", ["encoder", "preprocess"])
def test_the_watchdog_reloads_a_process_killed_mid_load(running: Running, step: str) -> None:
    server = running.server
    assert server.watchdog is not None
    restarts_before = len(server.watchdog.restarts)
    references = golden()
    answers: list[tuple[float, int, np.ndarray]] = []
    failures: list[tuple[float, EmbedError]] = []
    stop = threading.Event()

    def load(protocol: str) -> None:
        url = server.http_url if protocol == "http" else server.grpc_url
        with EmbedClient(url, protocol, retries=1, backoff_s=0.1) as client:
            index = 0
            while not stop.is_set():
                ref = references[index % len(references)]
                try:
                    answers.append((time.monotonic(), index, client.encode(E5, [ref.text], role=ref.role)[0]))
                except EmbedError as error:
                    failures.append((time.monotonic(), error))
                index += 1

    workers = [threading.Thread(target=load, args=(p,)) for p in ("http", "grpc")]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        kill_stubs(server, f"{E5}_{step}")
        deadline = killed_at + 60
        while not (answers and answers[-1][0] > killed_at + 1 and len(server.watchdog.restarts) > restarts_before):
            assert time.monotonic() < deadline, "no answer after the kill within 60 s"
            time.sleep(0.2)
        recovered_at = answers[-1][0]
        time.sleep(1.0)  # a little steady traffic after the recovery
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    for _, index, vector in answers:
        assert cosine(vector, references[index % len(references)].vector) >= 0.9999  # never a wrong vector
    for _, error in failures:  # refusals only while the process was down, and they say why
        assert isinstance(error, ServerUnavailable) and "is not healthy" in str(error), error
    restart = server.watchdog.restarts[-1]
    assert restart.model == f"{E5}_{step}" and restart.error is None
    assert recovered_at - killed_at < 30
    assert server.is_ready()


def test_the_sdk_reconnects_after_a_server_restart(running: Running) -> None:
    reference = golden()[0]
    options = running.server.options
    clients = {
        "http": EmbedClient(running.server.http_url, "http", retries=1, backoff_s=0.05),
        "grpc": EmbedClient(running.server.grpc_url, "grpc", retries=1, backoff_s=0.05),
    }
    try:
        for client in clients.values():
            client.encode(E5, [reference.text], role="query")  # connected
        running.server.stop()
        for client in clients.values():
            started = time.monotonic()
            with pytest.raises((ServerUnavailable, ModelNotFound)):
                client.encode(E5, [reference.text], role="query")
            assert time.monotonic() - started < 10  # refused, not hung
        running.server = LocalTritonServer(options).start()  # same ports
        for client in clients.values():
            vector = client.encode(E5, [reference.text], role="query")[0]  # the same client objects
            assert cosine(vector, reference.vector) >= 0.9999
    finally:
        for client in clients.values():
            client.close()


def test_sigterm_lets_in_flight_requests_finish(running: Running) -> None:
    """stop() drains (unloads the ensemble, which waits for its requests), then signals; late requests are refused."""
    server = running.server
    documents = [g for g in golden() if g.role == "document"]
    fillers = [f"filler {i}: " + "glacier harbour orbit " * 40 for i in range(30)]
    results: dict[int, Any] = {}

    def in_flight(index: int) -> None:
        with EmbedClient(server.grpc_url, "grpc", retries=0) as client:
            try:
                results[index] = client.encode(E5, [d.text for d in documents] + fillers)
            except EmbedError as error:
                results[index] = error

    threads = [threading.Thread(target=in_flight, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # all six sent; the encoder works through them one batch at a time
    late: list[BaseException] = []

    def late_request() -> None:
        time.sleep(0.5)
        try:
            raw("grpc", server.grpc_url, "sent after the stop began")
        except (InferenceServerException, OSError) as error:
            late.append(error)

    latecomer = threading.Thread(target=late_request)
    latecomer.start()
    started = time.monotonic()
    code = server.stop()
    stopped_in = time.monotonic() - started
    for thread in [*threads, latecomer]:
        thread.join(timeout=60)
    assert code == 0, server.log_tail()
    assert stopped_in < server.options.exit_timeout_s + 15
    for index in range(6):
        vectors = results[index]
        assert isinstance(vectors, np.ndarray), vectors  # every accepted request was answered
        for row, document in enumerate(documents):
            assert cosine(vectors[row], document.vector) >= 0.9999
    assert late, "a request sent while draining was answered"
