"""The asyncio client: same contract as EmbedClient, over tritonclient's aio HTTP and gRPC clients."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, TypeVar

import numpy as np

from .core import Call, ClientCore, Retry, Run, Script
from .request import ServedModel, Texts
from .windows import TextWindows

T = TypeVar("T")


class AsyncEmbedClient(ClientCore):
    """`await AsyncEmbedClient(url, protocol).encode(model, texts, is_query=True)`: EmbedClient's options and
    behaviour (timeouts, retries and failover over several replicas, concurrency, progress), awaited. Its
    connections, one per replica, are shared by the event loop's tasks."""

    _aio = True

    # -- connections -------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self._clients: dict[str, Any] = {}
        self._retired: list[tuple[float, Any]] = []  # dropped connections, and when they may be closed

    def _client(self, endpoint: str) -> Any:
        client = self._clients.get(endpoint)
        if client is None:
            client = self._clients[endpoint] = self._connect(endpoint)
        return client

    async def _drop(self, endpoint: str, client: Any) -> None:
        """The next request to `endpoint` opens a new connection. Other tasks may still wait on the old one (they
        share it): it is closed once every request on it has timed out, not now, which would cancel them."""
        if self._clients.get(endpoint) is client:
            del self._clients[endpoint]
            self._retired.append((time.monotonic() + self.timeout_s, client))
        now = time.monotonic()
        due = [c for at, c in self._retired if at <= now]
        self._retired = [(at, c) for at, c in self._retired if at > now]
        for old in due:
            with contextlib.suppress(Exception):  # a dead connection may fail to close; dropped either way
                await old.close()

    async def close(self) -> None:
        clients = [*self._clients.values(), *(c for _, c in self._retired)]
        self._clients, self._retired = {}, []
        for client in clients:
            await client.close()

    async def __aenter__(self) -> AsyncEmbedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- running the core's scripts ----------------------------------------------------------------------------
    async def _drive(self, script: Script[T]) -> T:
        run = Run(script)
        while not run.done:
            try:
                answer = await (self._request(run.step) if isinstance(run.step, Call) else self._all(run.step))
            except Exception as error:
                run.throw(error)
            else:
                run.send(answer)
        return run.result

    async def _request(self, call: Call) -> Any:
        retry = Retry(self, call)
        while True:
            target = retry.target()
            client = self._client(target)
            try:
                return call.read(await call.send(client))
            except self._failures as error:
                then = retry.failed(target, error)
            if then.reset:
                await self._drop(target, client)
            await asyncio.sleep(then.wait_s)

    async def _all(self, calls: list[Call]) -> list[Any]:
        if len(calls) == 1:  # one request (every online query): no semaphore, task or gather, no bar (< 2)
            return [await self._request(calls[0])]
        bar = self._progress_bar(len(calls))
        gate = asyncio.Semaphore(self.concurrency)

        async def one(call: Call) -> Any:
            async with gate:
                answer = await self._request(call)
            if bar is not None:
                bar.update(1)
            return answer

        try:
            return list(await asyncio.gather(*(one(call) for call in calls)))
        finally:
            if bar is not None:
                bar.close()

    # -- the API: EmbedClient's, awaited -------------------------------------------------------------------------
    async def model(self, name: str) -> ServedModel:
        return await self._drive(self._model(name))

    async def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles that carry an instruct-embed spec)."""
        return await self._drive(self._served())

    async def is_ready(self) -> bool:
        """Whether a replica is ready (any: the others are skipped while down)."""
        return await self._drive(self._ready())

    async def reload(self, model: str) -> None:
        """As EmbedClient.reload: load its steps again with a changed parameter, on every replica."""
        await self._drive(self._reload(model))

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
        output_type: str = "float",
        chunk: str | None = None,
        chunk_overlap: int | None = None,
    ) -> np.ndarray:
        """As EmbedClient.encode: [n, width] of the output type asked for, in input order."""
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
            output_type=output_type,
            chunk=chunk,
            chunk_overlap=chunk_overlap,
        )
        return vectors

    async def encode_with_counts(self, model: str, texts: Texts, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        return await self._drive(self._encode(model, texts, options))

    async def encode_windows(self, model: str, texts: Texts, **options: Any) -> list[TextWindows]:
        """CHUNK windows: each text as token windows of at most the model's limit, every window embedded with the
        text's template, neighbours sharing `chunk_overlap` tokens (default 32); one TextWindows per text, in input
        order. Takes encode's other options. One text per request."""
        return await self._drive(self._encode_windows(model, texts, options))

    async def encode_queries(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return await self.encode(model, texts, role="query", **options)

    async def encode_documents(self, model: str, texts: Texts, **options: Any) -> np.ndarray:
        return await self.encode(model, texts, role="document", **options)
