"""Overload on loopback: past the bounded queues Triton refuses at once with UNAVAILABLE, the SDK retries, and a
short soak (about 30 s) gives no wrong vector, bounded latency and flat memory. `make soak` runs the long one.

The server here has small queues (4 requests, 3 s) so that a few seconds of overload on a shared 2-core machine
are enough to fill them; the defaults (64 requests, 30 s) are checked in tests/unit/test_queue_policy.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as grpcaio
import tritonclient.http.aio as httpaio
from tritonclient.utils import InferenceServerException

from benchmarks.soak import Settings, soak
from instruct_embed.repository.configs import ServingOptions
from tests.reliability_support import E5, own_server

pytestmark = pytest.mark.integration

SMALL_QUEUES = ServingOptions(max_queue_size=4, queue_timeout_us=3_000_000)
UNAVAILABLE = {"http": "503", "grpc": "StatusCode.UNAVAILABLE"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with own_server(tmp_path_factory.mktemp("overload"), SMALL_QUEUES) as running:
        yield running


async def burst(module: Any, url: str, requests: int, rows: int) -> list[tuple[str, float, str]]:
    """`requests` concurrent requests of `rows` medium documents: (status or "ok", seconds, message)."""
    client = module.InferenceServerClient(url)
    texts = np.array([[f"document {i}: the glacier and the river and the harbour ".encode() * 6] for i in range(rows)])

    async def one() -> tuple[str, float, str]:
        tensor = module.InferInput("TEXT", [rows, 1], "BYTES")
        tensor.set_data_from_numpy(texts.astype(object))
        started = time.perf_counter()
        try:
            await client.infer(E5, [tensor])
            return "ok", time.perf_counter() - started, ""
        except InferenceServerException as error:
            return str(error.status()), time.perf_counter() - started, str(error.message())

    try:
        return await asyncio.gather(*(one() for _ in range(requests)))
    finally:
        await client.close()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_excess_requests_are_refused_at_once_with_unavailable(server: Any, protocol: str) -> None:
    module, url = (httpaio, server.http_url) if protocol == "http" else (grpcaio, server.grpc_url)
    results = asyncio.run(burst(module, url, requests=40, rows=8))
    refused = [r for r in results if r[0] != "ok"]
    assert any(r[0] == "ok" for r in results)
    assert refused, "40 concurrent requests never filled a queue of 4"
    for status, _, message in refused:
        assert status == UNAVAILABLE[protocol], message
        assert "Exceeds maximum queue size" in message or "Request timeout expired" in message
    full = [seconds for _, seconds, message in refused if "Exceeds maximum queue size" in message]
    assert full and float(np.median(full)) < 1.0  # refused at the door, not after a wait


def test_a_short_soak_gives_no_wrong_vector_bounded_latency_and_flat_memory(server: Any) -> None:
    settings = Settings(calibrate_s=6, normal_s=4, overload_s=15, recovery_s=8, concurrency=8)
    capacity, phases, memory = asyncio.run(soak(server.grpc_url, server.process.pid, settings))
    by_name = {p["phase"]: p for p in phases}
    assert capacity > 0
    assert sum(p["wrong"] for p in phases) == 0, [p["errors"] for p in phases]
    assert sum(p["error"] for p in phases) == 0, [p["errors"] for p in phases]
    assert sum(p["dropped"] for p in phases) == 0
    overload, recovery = by_name["overload"], by_name["recovery"]
    assert overload["refused_attempts"] > 0, overload  # the queues did fill
    assert overload["ok"] > 0
    # An accepted request waited at most the queue timeout (3 s) per attempt, 3 attempts with the SDK's retries.
    assert overload["ok_latency_ms"]["max"] < 3 * (3_000 + 4_000)
    # Back to normal: once the overload's backlog has drained (its first half), nothing is refused.
    assert recovery["ok"] > 0 and recovery["refused_in_second_half"] == 0, recovery
    assert memory["growth_after_normal"] < 150, memory


def test_the_soak_report_renders_into_the_reliability_doc(tmp_path: Path) -> None:
    from benchmarks.soak import DOC_BEGIN, DOC_END, Report, write_doc

    doc = tmp_path / "reliability.md"
    doc.write_text(f"# x\n{DOC_BEGIN}\nold\n{DOC_END}\nafter\n")
    phase = {
        "phase": "overload",
        "seconds": 1.0,
        "offered_rps": 2.0,
        "sent": 3,
        "ok": 2,
        "wrong": 0,
        "refused": 1,
        "error": 0,
        "dropped": 0,
        "refused_attempts": 4,
        "refused_in_second_half": 0,
        "ok_latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 2.0, "max": 3.0},
        "refused_latency_ms": {},
        "errors": [],
    }
    report = Report(
        when="now",
        machine="m",
        load_average={"start": "1", "end": "1"},
        serving={"max_batch_size": 64, "max_queue_size": 64, "queue_timeout_s": 30.0, "sdk_retries": 2},
        capacity_rps=1.0,
        phases=[phase],
        memory_mb={"after_calibration": 1, "after_normal": 1, "peak": 2, "end": 1, "growth_after_normal": 0},
        totals={"sent": 3, "ok": 2, "wrong": 0, "refused": 1, "error": 0, "dropped": 0},
    )
    write_doc(doc, report)
    text = doc.read_text()
    assert "old" not in text and "| overload | 1 | 2.0 | 3 | 2 | 0 | 0 | 4 | 1 (0) | 1.0 / 2.0 / 3.0 | - |" in text
    assert text.endswith("after\n")
