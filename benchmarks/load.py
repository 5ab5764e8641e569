"""Client-side load through the SDK: an online query stream, a bulk indexing run, queries under bulk load, and
bursts of queries on an idle server.

Everything goes through `EmbedClient`, the way a user's code talks to the server; time is wall-clock seconds
(time.perf_counter) and latencies are per call, retries included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stream:
    seconds: float
    latencies_ms: tuple[float, ...]

    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds


def online_stream(url: str, protocol: str, model: str, queries: Sequence[str], concurrency: int) -> Stream:
    """Every query its own request (1 text), `concurrency` in flight; the first pass warms the connections."""
    from instruct_embed.client import EmbedClient

    with EmbedClient(url, protocol, concurrency=1) as client, ThreadPoolExecutor(concurrency) as pool:
        client.model(model)

        def one(text: str) -> float:
            start = time.perf_counter()
            client.encode(model, [text], is_query=True)
            return (time.perf_counter() - start) * 1000.0

        list(pool.map(one, queries[: 4 * concurrency]))  # connections opened, server warm
        start = time.perf_counter()
        latencies = list(pool.map(one, queries))
        return Stream(time.perf_counter() - start, tuple(latencies))


def bulk(url: str, protocol: str, model: str, documents: Sequence[str], concurrency: int) -> tuple[float, np.ndarray]:
    """The SDK's bulk path (sorted by length, split into max_batch_size requests): seconds and the vectors."""
    from instruct_embed.client import EmbedClient

    with EmbedClient(url, protocol, concurrency=concurrency) as client:
        client.model(model)
        start = time.perf_counter()
        vectors = client.encode(model, list(documents), role="document")
        return time.perf_counter() - start, vectors


@dataclass(frozen=True)
class UnderLoad:
    latencies_ms: tuple[float, ...]
    bulk_documents: int  # documents the load embedded while the queries were probed
    seconds: float

    def p95(self) -> float:
        return float(np.percentile(self.latencies_ms, 95))


def queries_under_bulk_load(
    url: str,
    protocol: str,
    model: str,
    documents: Sequence[str],
    queries: Sequence[str],
    bulk_requests: int,
    batch: int,
    warmup_s: float = 2.0,
    gap_s: float = 0.05,
) -> UnderLoad:
    """Saturate the server with `bulk_requests` document requests of `batch` texts always in flight, then send
    `queries` one at a time (each waits for the previous, `gap_s` apart) and time them."""
    from instruct_embed.client import EmbedClient

    stop = threading.Event()
    embedded = [0] * bulk_requests

    def indexer(worker: int) -> None:
        with EmbedClient(url, protocol, concurrency=1, retries=20, timeout_s=600) as client:
            position = worker * batch
            while not stop.is_set():
                chunk = [documents[(position + i) % len(documents)] for i in range(batch)]
                client.encode(model, chunk, role="document")
                embedded[worker] += len(chunk)
                position += bulk_requests * batch

    workers = [threading.Thread(target=indexer, args=(w,), daemon=True) for w in range(bulk_requests)]
    with EmbedClient(url, protocol, concurrency=1, retries=20, timeout_s=600) as client:
        client.model(model)
        for worker in workers:
            worker.start()
        try:
            time.sleep(warmup_s)  # the queue fills
            start_docs, start = sum(embedded), time.perf_counter()
            latencies = []
            for text in queries:
                begin = time.perf_counter()
                client.encode(model, [text], is_query=True)
                latencies.append((time.perf_counter() - begin) * 1000.0)
                time.sleep(gap_s)
            seconds = time.perf_counter() - start
            done = sum(embedded) - start_docs
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=600)
    return UnderLoad(tuple(latencies), done, seconds)


@dataclass(frozen=True)
class Bursts:
    """Per burst of one-text queries sent at once: its slowest request and its longest silence, the longest time
    during which requests were outstanding and none came back. A server that is computing answers a burst in steps
    of one execute; a silence of hundreds of milliseconds means requests sat in a queue while the server idled."""

    worst_ms: tuple[float, ...]
    silence_ms: tuple[float, ...]

    def stalled(self, silence_ms: float) -> int:
        """Bursts with a silence longer than `silence_ms`."""
        return sum(silence > silence_ms for silence in self.silence_ms)


def longest_silence(latencies_ms: Sequence[float]) -> float:
    """The longest gap between the burst's start (0) and its answers, and between consecutive answers."""
    answers = np.sort(np.asarray([0.0, *latencies_ms]))
    return float(np.max(np.diff(answers))) if len(answers) > 1 else 0.0


def query_bursts(
    url: str, protocol: str, model: str, queries: Sequence[str], size: int, bursts: int, gap_s: float = 0.05
) -> Bursts:
    """`bursts` times: `size` one-text queries sent together, all awaited, then `gap_s` of idle server. Traffic
    that comes in bursts is where a request can be left behind in a batcher's queue (benchmarks/README.md,
    "Stalls"): the last arrivals find every instance busy."""
    from instruct_embed.client import EmbedClient

    with EmbedClient(url, protocol, concurrency=1) as client, ThreadPoolExecutor(size) as pool:
        client.model(model)
        start = 0.0

        def one(text: str) -> float:
            client.encode(model, [text], is_query=True)
            return (time.perf_counter() - start) * 1000.0  # since the burst began: when this answer came

        start = time.perf_counter()
        list(pool.map(one, queries[: 4 * size]))  # connections opened, server warm
        worst, silences = [], []
        for burst in range(bursts):
            first = burst * size % max(1, len(queries) - size)
            start = time.perf_counter()
            answered = list(pool.map(one, queries[first : first + size]))
            worst.append(max(answered))
            silences.append(longest_silence(answered))
            time.sleep(gap_s)
        return Bursts(tuple(worst), tuple(silences))
