"""The Python SDK: `EmbedClient(url, protocol).encode(model, texts, is_query=...)`."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from .core import Call, ClientCore, Retry, Run, Script
from .request import ServedModel, Texts
from .windows import TextWindows

T = TypeVar("T")


class EmbedClient(ClientCore):
    """Synchronous client over tritonclient HTTP or gRPC.

    Large inputs are sorted by length, split into requests of at most the model's max_batch_size, sent with
    at most `concurrency` requests in flight, and reassembled in the caller's order. UNAVAILABLE answers,
    connection failures and requests that take longer than `timeout_s` are retried with exponential backoff;
    other errors raise at once with the server's message. One client may be shared by threads: each thread gets
    its own connection.

    `url` may name several replicas (`a:8001,b:8001`, or `dns:///svc:8001` for every address of a headless
    Service): requests go to them in turn, and one that cannot be reached is skipped (endpoints.py).

    What is asked, in which order, and what a failure means is decided in core.py; this class does the I/O.
    """

    # -- connections -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._local = threading.local()
        self._clients: list[Any] = []  # every thread's connections, for close()
        self._lock = threading.Lock()

    def _client(self, endpoint: str) -> Any:
        """This thread's connection to `endpoint`."""
        connections = self._connections()
        client = connections.get(endpoint)
        if client is None:
            client = connections[endpoint] = self._connect(endpoint)
            with self._lock:
                self._clients.append(client)
        return client

    def _connections(self) -> dict[str, Any]:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        return connections

    def _drop(self, endpoint: str, client: Any) -> None:
        # The connection may be dead (a server restarted): the next call opens a new one. It is this thread's own.
        if self._connections().get(endpoint) is client:
            del self._connections()[endpoint]
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
        with contextlib.suppress(Exception):  # a dead connection may fail to close; dropped either way
            client.close()

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
        self._local = threading.local()

    def __enter__(self) -> EmbedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running the core's scripts ----------------------------------------------------------------------------
    def _drive(self, script: Script[T]) -> T:
        run = Run(script)
        while not run.done:
            try:
                answer = self._request(run.step) if isinstance(run.step, Call) else self._all(run.step)
            except Exception as error:
                run.throw(error)
            else:
                run.send(answer)
        return run.result

    def _request(self, call: Call) -> Any:
        retry = Retry(self, call)
        while True:
            target = retry.target()
            client = self._client(target)
            try:
                return call.read(call.send(client))
            except self._failures as error:
                then = retry.failed(target, error)
            if then.reset:
                self._drop(target, client)
            time.sleep(then.wait_s)

    def _all(self, calls: list[Call]) -> list[Any]:
        bar = self._progress_bar(len(calls))

        def one(call: Call) -> Any:
            answer = self._request(call)
            if bar is not None:
                bar.update(1)
            return answer

        try:
            if len(calls) == 1 or self.concurrency == 1:
                return [one(call) for call in calls]
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="instruct-embed") as pool:
                return list(pool.map(one, calls))
        finally:
            if bar is not None:
                bar.close()

    # -- the API -----------------------------------------------------------------------------------------------
    def model(self, name: str) -> ServedModel:
        """What the server says about `name` (its config parameters), cached."""
        return self._drive(self._model(name))

    def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles that carry an instruct-embed spec)."""
        return self._drive(self._served())

    def is_ready(self) -> bool:
        """Whether a replica is ready (any: the others are skipped while down)."""
        return self._drive(self._ready())

    def reload(self, model: str) -> None:
        """Load `model`'s steps (preprocess, encoder, a postprocess) again: fresh processes, swapped in when ready.

        The fix for "Stub process ... is not healthy": Triton does not restart a model process that died. Each
        step is loaded with its own config plus a changing parameter (a load that changes nothing is a no-op),
        so no file is touched and the model keeps its place: requests meanwhile get the old processes' answers
        or errors, not "unknown model". Needs the server's explicit model control (which `instruct-embed serve`
        has; it also reloads on its own when a stub dies). With several replicas, each reloads.
        """
        self._drive(self._reload(model))

    def encode(
        self,
        model: str,
        texts: Texts,
        *,
        is_query: bool = False,
        role: str | None = None,
        task: str | None = None,
        instruction: str | None = None,
        instruction_kind: str | None = None,
        truncate: str = "end",
        dimensions: int | None = None,
        output_type: str = "float",
        chunk: str | None = None,
        chunk_overlap: int | None = None,
    ) -> np.ndarray:
        """Embed `texts` (strings or Items); returns float32 [n, dim] in input order.

        `role` overrides `is_query` ("query", "document" or "raw": sent as written). `instruction_kind`
        ("retrieval" | "symmetric", sent as INSTRUCTION_KIND) says which template the texts get: retrieval the
        role's own, symmetric the model's symmetric template for every text, whatever its role (STS,
        classification, clustering); unset, it is the named task's kind, else retrieval. `dimensions` (sent as
        DIMENSIONS) has the server return the first n components renormalised, for the Matryoshka sizes the
        model was trained for (others are refused, naming them). `output_type` picks the storage type the server
        returns: float (float32), int8 / uint8 ([n, dim], over the model's calibrated ranges) or binary / ubinary
        (sign bits packed 8 per byte, [n, ceil(dim / 8)], int8 / uint8). `chunk="mean"` embeds a text over the
        model's limit as token windows (`chunk_overlap` tokens shared, default 32) and returns their mean,
        renormalised, instead of cutting it (`encode_windows` returns the windows). Raises InvalidRequest,
        ModelNotFound or ServerUnavailable carrying the server's message.
        """
        vectors, _ = self.encode_with_counts(
            model,
            texts,
            is_query=is_query,
            role=role,
            task=task,
            instruction=instruction,
            instruction_kind=instruction_kind,
            truncate=truncate,
            dimensions=dimensions,
            output_type=output_type,
            chunk=chunk,
            chunk_overlap=chunk_overlap,
        )
        return vectors

    def encode_with_counts(self, model: str, texts: Texts, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """Like encode, also returning the token count of each text (int32 [n])."""
        return self._drive(self._encode(model, texts, options))

    def encode_windows(self, model: str, texts: Texts, **options: Any) -> list[TextWindows]:
        """CHUNK windows: each text as token windows of at most the model's limit, every window embedded with the
        text's template, neighbours sharing `chunk_overlap` tokens (default 32); one TextWindows per text, in input
        order. Takes encode's other options. One text per request."""
        return self._drive(self._encode_windows(model, texts, options))

    def encode_queries(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return self.encode(model, texts, role="query", **options)

    def encode_documents(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return self.encode(model, texts, role="document", **options)


def encode(
    model: str,
    texts: Texts,
    *,
    is_query: bool = False,
    url: str | None = None,
    protocol: str = "http",
    **options: Any,
) -> np.ndarray:
    """One-shot helper: `encode("multilingual-e5-small", ["..."], is_query=True)`."""
    with EmbedClient(url, protocol) as client:
        return client.encode(model, texts, is_query=is_query, **options)
