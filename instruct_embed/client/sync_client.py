"""The Python SDK: `EmbedClient(url, protocol).encode(model, texts, is_query=...)`."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from instruct_embed.server.repository_api import marked_for_reload

from .batching import Chunk, plan_chunks, reassemble
from .endpoints import Endpoints
from .errors import EmbedError, ServerUnavailable
from .request import (
    EncodeRequest,
    ServedModel,
    Texts,
    build_inputs,
    ensemble_candidates,
    ensemble_steps,
    parse_config,
    requested_outputs,
    texts_of,
)
from .transport import DEFAULT_URLS, classify, triton_module


class EmbedClient:
    """Synchronous client over tritonclient HTTP or gRPC.

    Large inputs are sorted by length, split into requests of at most the model's max_batch_size, sent with
    at most `concurrency` requests in flight, and reassembled in the caller's order. UNAVAILABLE answers and
    connection failures are retried with exponential backoff; other errors raise at once with the server's
    message. One client may be shared by threads: each thread gets its own connection.

    `url` may name several replicas (`a:8001,b:8001`, or `dns:///svc:8001` for every address of a headless
    Service): requests go to them in turn, and one that cannot be reached is skipped (endpoints.py).
    """

    def __init__(
        self,
        url: str | None = None,
        protocol: str = "http",
        *,
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.2,
        concurrency: int = 4,
        on_retry: Callable[[ServerUnavailable], None] | None = None,
        progress: bool = False,
    ) -> None:
        self.protocol = protocol
        self._module = triton_module(protocol)
        self.url = url or DEFAULT_URLS[protocol]
        self.endpoints = Endpoints(self.url)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry  # called with each refusal that is about to be retried (logging, counting)
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._models: dict[str, ServedModel] = {}

    # -- connections -------------------------------------------------------------------------------------------
    def _client(self, endpoint: str) -> Any:
        """This thread's connection to `endpoint`."""
        connections = self._connections()
        client = connections.get(endpoint)
        if client is None:
            if self.protocol == "http":
                client = self._module.InferenceServerClient(
                    endpoint, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
                )
            else:
                client = self._module.InferenceServerClient(endpoint)
            connections[endpoint] = client
            with self._lock:
                self._clients.append(client)
        return client

    def _connections(self) -> dict[str, Any]:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        return connections

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

    # -- model metadata ------------------------------------------------------------------------------------------
    def model(self, name: str) -> ServedModel:
        """What the server says about `name` (its config parameters), cached."""
        if name not in self._models:
            self._models[name] = parse_config(name, self._call(lambda client: self._config(client, name), name))
        return self._models[name]

    def _config(self, client: Any, name: str) -> dict[str, Any]:
        """The config Triton serves `name` with, as JSON (the same fields over both protocols)."""
        config = client.get_model_config(name)
        if self.protocol == "grpc":
            from google.protobuf.json_format import MessageToDict

            return MessageToDict(config.config, preserving_proto_field_name=True)
        return dict(config)

    def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles that carry an instruct-embed spec)."""
        index = self._call(lambda client: client.get_model_repository_index(), "")
        served = []
        for name in ensemble_candidates(index, self.protocol):
            try:
                served.append(self.model(name))
            except (EmbedError, KeyError):
                continue  # not one of ours
        return sorted(served, key=lambda m: m.name)

    def reload(self, model: str) -> None:
        """Load `model`'s steps (preprocess, encoder, a postprocess) again: fresh processes, swapped in when ready.

        The fix for "Stub process ... is not healthy": Triton does not restart a model process that died. Each
        step is loaded with its own config plus a changing parameter (a load that changes nothing is a no-op),
        so no file is touched and the model keeps its place: requests meanwhile get the old processes' answers
        or errors, not "unknown model". Needs the server's explicit model control (which `instruct-embed serve`
        has; it also reloads on its own when a stub dies). With several replicas, each reloads.
        """
        for endpoint in self.endpoints.all():
            steps = ensemble_steps(self._call(lambda client: self._config(client, model), model, endpoint))
            for step in steps:
                self._call(functools.partial(self._reload_step, step), model, endpoint)

    def _reload_step(self, step: str, client: Any) -> None:
        client.load_model(step, config=json.dumps(marked_for_reload(self._config(client, step))))

    # -- encoding ------------------------------------------------------------------------------------------------
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
    ) -> np.ndarray:
        """Embed `texts` (strings or Items); returns float32 [n, dim] in input order.

        `role` overrides `is_query` ("query", "document" or "raw": sent as written). `instruction_kind`
        ("retrieval" | "symmetric", sent as INSTRUCTION_KIND) says which template the texts get: retrieval the
        role's own, symmetric the model's symmetric template for every text, whatever its role (STS,
        classification, clustering); unset, it is the named task's kind, else retrieval. `dimensions` (sent as
        DIMENSIONS) has the server return the first n components renormalised, for the Matryoshka sizes the
        model was trained for (others are refused, naming them). Raises InvalidRequest, ModelNotFound or
        ServerUnavailable carrying the server's message.
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
        )
        return vectors

    def encode_with_counts(self, model: str, texts: Texts, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """Like encode, also returning the token count of each text (int32 [n])."""
        values = texts_of(texts)
        served = self.model(model)
        request = EncodeRequest.make(**options).for_model(served)
        if not values:
            width = request.dimensions or served.dim
            return np.zeros((0, width), dtype=np.float32), np.zeros((0,), dtype=np.int32)
        chunks = plan_chunks(values, max(1, served.max_batch_size))

        def send(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
            batch = [values[i] for i in chunk.positions]
            return self._call(lambda client: self._infer(client, model, batch, request), model)

        results = self._map(send, chunks)
        vectors = reassemble(chunks, [r[0] for r in results], len(values))
        counts = reassemble(chunks, [r[1] for r in results], len(values))
        return vectors, counts

    def encode_queries(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return self.encode(model, texts, role="query", **options)

    def encode_documents(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return self.encode(model, texts, role="document", **options)

    def _map(self, send: Callable[[Chunk], Any], chunks: list[Chunk]) -> list[Any]:
        bar = _progress(len(chunks)) if self.progress and len(chunks) > 1 else None
        try:
            if len(chunks) == 1 or self.concurrency == 1:
                results = []
                for chunk in chunks:
                    results.append(send(chunk))
                    if bar is not None:
                        bar.update(1)
                return results
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="instruct-embed") as pool:
                futures = [pool.submit(send, chunk) for chunk in chunks]
                if bar is not None:
                    for future in futures:
                        future.add_done_callback(lambda _: bar.update(1))
                return [future.result() for future in futures]
        finally:
            if bar is not None:
                bar.close()

    def _infer(
        self, client: Any, model: str, texts: list[str], request: EncodeRequest
    ) -> tuple[np.ndarray, np.ndarray]:
        inputs = build_inputs(self._module, texts, request)
        result = client.infer(model, inputs, outputs=requested_outputs(self._module), priority=request.priority)
        return result.as_numpy("EMBEDDING"), result.as_numpy("TOKEN_COUNT").reshape(-1)

    def _call(self, request: Callable[[Any], Any], model: str, endpoint: str | None = None) -> Any:
        """`request(connection)` on the next replica (or on `endpoint` alone), retried as the class says."""
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            target = endpoint or self.endpoints.pick()
            try:
                return request(self._client(target))
            except InferenceServerException as error:
                typed = classify(error, model)
            except (ConnectionError, OSError) as error:
                typed = ServerUnavailable(f"server unreachable at {target}: {error}")
            if not isinstance(typed, ServerUnavailable) or attempt == self.retries:
                raise typed
            if self.on_retry is not None:
                self.on_retry(typed)
            self._reset_connection(target)
            if self.endpoints.failed(target, typed.server_message or str(typed)) and endpoint is None:
                continue  # another replica is up: go there now
            time.sleep(delay * random.uniform(0.5, 1.5))  # jitter: refused clients must not return in step
            delay *= 2
        raise AssertionError("unreachable")

    def _reset_connection(self, endpoint: str) -> None:
        # After a server restart the old connection is dead: the next call opens a new one.
        client = self._connections().pop(endpoint, None)
        if client is not None:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
            with contextlib.suppress(Exception):  # a dead connection may fail to close; dropped either way
                client.close()


def _progress(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="request", desc="encoding")


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
