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
    requests in flight; retries UNAVAILABLE with backoff; results in input order."""

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
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry  # called with each refusal that is about to be retried (logging, counting)
        self.concurrency = max(1, concurrency)
        self._client = self._module.InferenceServerClient(self.url)
        self._models: dict[str, ServedModel] = {}

    async def close(self) -> None:
        await self._client.close()

    async def __aenter__(self) -> AsyncEmbedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def model(self, name: str) -> ServedModel:
        if name not in self._models:
            self._models[name] = parse_config(name, await self._call(lambda: self._config(name), name))
        return self._models[name]

    async def _config(self, name: str) -> dict[str, Any]:
        """The config Triton serves `name` with, as JSON (the same fields over both protocols)."""
        if self.protocol == "grpc":
            return dict((await self._client.get_model_config(name, as_json=True))["config"])
        return dict(await self._client.get_model_config(name))

    async def reload(self, model: str) -> None:
        """As EmbedClient.reload: load its steps again with a changed parameter; the model stays loaded."""
        for step in ensemble_steps(await self._call(lambda: self._config(model), model)):
            await self._call(functools.partial(self._reload_step, step), model)

    async def _reload_step(self, step: str) -> None:
        config = marked_for_reload(await self._config(step))
        await self._client.load_model(step, config=json.dumps(config))

    async def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles that carry an instruct-embed spec)."""
        index = await self._call(lambda: self._client.get_model_repository_index(), "")
        served = []
        for name in ensemble_candidates(index, self.protocol):
            try:
                served.append(await self.model(name))
            except (EmbedError, KeyError):
                continue  # not one of ours
        return sorted(served, key=lambda m: m.name)

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready())
        except Exception:
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
                    lambda: self._client.infer(
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

    async def _call(self, request: Callable[[], Awaitable[Any]], model: str) -> Any:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return await request()
            except InferenceServerException as error:
                typed = classify(error, model)
            except (TimeoutError, ConnectionError, OSError) as error:
                typed = ServerUnavailable(f"server unreachable at {self.url}: {error}")
            if not isinstance(typed, ServerUnavailable) or attempt == self.retries:
                raise typed
            if self.on_retry is not None:
                self.on_retry(typed)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # jitter: refused clients must not return in step
            delay *= 2
        raise AssertionError("unreachable")
