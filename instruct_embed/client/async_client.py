"""The asyncio client: same contract as EmbedClient, over tritonclient's aio HTTP and gRPC clients."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Awaitable, Callable
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
from .transport import DEFAULT_URLS, PROTOCOLS, classify


def _aio_module(protocol: str) -> Any:
    if protocol == "http":
        import tritonclient.http.aio as module
    elif protocol == "grpc":
        import tritonclient.grpc.aio as module
    else:
        raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    return module


class AsyncEmbedClient:
    """`await AsyncEmbedClient(url, protocol).encode(model, texts, is_query=True)`; at most `concurrency`
    requests in flight; retries UNAVAILABLE with backoff; results in input order. `url` may name several
    replicas, as EmbedClient's."""

    def __init__(
        self,
        url: str | None = None,
        protocol: str = "http",
        *,
        retries: int = 3,
        backoff_s: float = 0.2,
        concurrency: int = 4,
        on_retry: Callable[[ServerUnavailable], None] | None = None,
    ) -> None:
        self.protocol = protocol
        self._module = _aio_module(protocol)
        self.url = url or DEFAULT_URLS[protocol]
        self.endpoints = Endpoints(self.url)
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry  # called with each refusal that is about to be retried (logging, counting)
        self.concurrency = max(1, concurrency)
        self._clients: dict[str, Any] = {}  # one connection per replica, shared by the event loop's tasks
        self._models: dict[str, ServedModel] = {}

    def _client(self, endpoint: str) -> Any:
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = self._module.InferenceServerClient(endpoint)
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    async def __aenter__(self) -> AsyncEmbedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def model(self, name: str) -> ServedModel:
        if name not in self._models:
            self._models[name] = parse_config(name, await self._call(lambda c: self._config(c, name), name))
        return self._models[name]

    async def _config(self, client: Any, name: str) -> dict[str, Any]:
        """The config Triton serves `name` with, as JSON (the same fields over both protocols)."""
        if self.protocol == "grpc":
            return dict((await client.get_model_config(name, as_json=True))["config"])
        return dict(await client.get_model_config(name))

    async def reload(self, model: str) -> None:
        """As EmbedClient.reload: load its steps again with a changed parameter, on every replica."""
        for endpoint in self.endpoints.all():
            steps = ensemble_steps(await self._call(lambda c: self._config(c, model), model, endpoint))
            for step in steps:
                await self._call(functools.partial(self._reload_step, step), model, endpoint)

    async def _reload_step(self, step: str, client: Any) -> None:
        config = marked_for_reload(await self._config(client, step))
        await client.load_model(step, config=json.dumps(config))

    async def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles that carry an instruct-embed spec)."""
        index = await self._call(lambda c: c.get_model_repository_index(), "")
        served = []
        for name in ensemble_candidates(index, self.protocol):
            try:
                served.append(await self.model(name))
            except (EmbedError, KeyError):
                continue  # not one of ours
        return sorted(served, key=lambda m: m.name)

    async def is_ready(self) -> bool:
        """Whether a replica is ready (any: the others are skipped while down)."""
        for endpoint in self.endpoints.all():
            try:
                if await self._client(endpoint).is_server_ready():
                    return True
            except Exception:
                continue
        return False

    async def encode(
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
        """As EmbedClient.encode: float32 [n, dim] in input order."""
        vectors, _ = await self.encode_with_counts(
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

    async def encode_with_counts(self, model: str, texts: Texts, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        values = texts_of(texts)
        served = await self.model(model)
        request = EncodeRequest.make(**options).for_model(served)
        if not values:
            width = request.dimensions or served.dim
            return np.zeros((0, width), dtype=np.float32), np.zeros((0,), dtype=np.int32)
        chunks = plan_chunks(values, max(1, served.max_batch_size))
        gate = asyncio.Semaphore(self.concurrency)

        async def send(chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
            batch = [values[i] for i in chunk.positions]
            async with gate:
                result = await self._call(
                    lambda c: c.infer(
                        model,
                        build_inputs(self._module, batch, request),
                        outputs=requested_outputs(self._module),
                        priority=request.priority,
                    ),
                    model,
                )
            return result.as_numpy("EMBEDDING"), result.as_numpy("TOKEN_COUNT").reshape(-1)

        results = await asyncio.gather(*(send(chunk) for chunk in chunks))
        return (
            reassemble(chunks, [r[0] for r in results], len(values)),
            reassemble(chunks, [r[1] for r in results], len(values)),
        )

    async def encode_queries(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return await self.encode(model, texts, role="query", **options)

    async def encode_documents(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return await self.encode(model, texts, role="document", **options)

    async def _call(self, request: Callable[[Any], Awaitable[Any]], model: str, endpoint: str | None = None) -> Any:
        """`await request(connection)` on the next replica (or on `endpoint` alone), retried as EmbedClient's."""
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            target = endpoint or self.endpoints.pick()
            try:
                return await request(self._client(target))
            except InferenceServerException as error:
                typed = classify(error, model)
            except (TimeoutError, ConnectionError, OSError) as error:
                typed = ServerUnavailable(f"server unreachable at {target}: {error}")
            if not isinstance(typed, ServerUnavailable) or attempt == self.retries:
                raise typed
            if self.on_retry is not None:
                self.on_retry(typed)
            if self.endpoints.failed(target, typed.server_message or str(typed)) and endpoint is None:
                continue  # another replica is up: go there now
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # jitter: refused clients must not return in step
            delay *= 2
        raise AssertionError("unreachable")
