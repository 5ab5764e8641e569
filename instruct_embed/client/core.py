"""What EmbedClient and AsyncEmbedClient decide, written once; the two classes only do the I/O.

A sans-I/O core: each operation (encode, model, models, reload, is_ready) is a *script*, a generator that yields
the requests it needs (a `Call`, or a list of calls that may run at once), is sent their answers, and has a
failure that ends a call thrown into it. A shell runs a script with `Run`, performs each request (blocking, or
awaited), and retries it as `Retry` says. So request planning, the order of a reload's steps, the model cache,
timeouts and the retry and failover policy exist here alone, and both clients get every one of them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
from tritonclient.utils import InferenceServerException

from instruct_embed.runtime.contract import CHUNK_CHARS, CHUNK_TEXT, CHUNK_TOKENS, TOKEN_COUNT, WINDOWS
from instruct_embed.server.repository_api import marked_for_reload

from .batching import Chunk, plan_chunks, reassemble
from .endpoints import Endpoints, means_endpoint_down
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
from .transport import DEFAULT_URLS, classify, failures, triton_module
from .windows import TextWindows, in_order, split_by_text

T = TypeVar("T")


def _as_is(answer: Any) -> Any:
    return answer


@dataclass(frozen=True)
class Call:
    """One tritonclient request: `read(connection.<method>(*args, **kwargs))`."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = ""  # the model its errors name
    endpoint: str | None = None  # that replica only (reload, readiness); None: the next one in turn
    retry: bool = True  # False: the first failure is the answer (a readiness probe answers at once)
    read: Callable[[Any], Any] = _as_is  # the answer as the script wants it

    def send(self, connection: Any) -> Any:
        return getattr(connection, self.method)(*self.args, **self.kwargs)


Step = Call | list[Call]  # a list: calls that may be in flight together, answered in their order
Script = Generator[Step, Any, T]


class Run(Generic[T]):
    """Steps through a script: the shell performs `step` and hands back its answer (`send`) or its failure
    (`throw`), until `done`; then `result` is the script's return value."""

    def __init__(self, script: Script[T]) -> None:
        self._script = script
        self.done = False
        self.step: Step
        self.result: T
        self.send(None)

    def send(self, answer: Any) -> None:
        self._resume(self._script.send, answer)

    def throw(self, error: BaseException) -> None:
        self._resume(self._script.throw, error)

    def _resume(self, resume: Callable[[Any], Step], value: Any) -> None:
        try:
            self.step = resume(value)
        except StopIteration as stop:
            self.done, self.result = True, stop.value


@dataclass(frozen=True)
class Next:
    """What a shell does before a call's next attempt."""

    wait_s: float
    reset: bool  # drop the connection first: the replica is gone, stopping, or did not answer in time


class Retry:
    """One call's attempts: where each goes, and whether a failure is tried again, where and when.

    Only ServerUnavailable is retried (unreachable, timed out, a full queue, a server stopping, a model process
    down); any other answer is final. A replica that is gone (`means_endpoint_down`) is marked down and its
    connection dropped (a dead one is not reused), and the call moves to another replica at once; where none is
    up, or the call is pinned to this replica, it waits with exponential backoff and jitter. A replica that is only
    loaded (queue full, queue wait ran out) keeps its place and its connection: backoff alone.
    """

    def __init__(self, core: ClientCore, call: Call) -> None:
        self._core = core
        self._call = call
        self._left = core.retries if call.retry else 0
        self._delay = core.backoff_s

    def target(self) -> str:
        return self._call.endpoint or self._core.endpoints.pick()

    def failed(self, target: str, error: BaseException) -> Next:
        """The next step after `error` from `target`; raises the typed error where it is final."""
        if isinstance(error, InferenceServerException):
            typed = classify(error, self._call.model)
        else:  # the socket's own failure: refused, reset, timed out
            typed = ServerUnavailable(f"server unreachable at {target}: {error}")
        if not isinstance(typed, ServerUnavailable) or self._left == 0:
            raise typed from error
        self._left -= 1
        if self._core.on_retry is not None:
            self._core.on_retry(typed)
        message = typed.server_message or str(typed)
        gone = means_endpoint_down(message)
        if self._core.endpoints.failed(target, message) and self._call.endpoint is None:
            return Next(0.0, gone)  # another replica is up: go there now
        wait = self._delay * random.uniform(0.5, 1.5)  # jitter: refused clients must not return in step
        self._delay *= 2
        return Next(wait, gone)


class ClientCore:
    """The settings, the model cache and the scripts both clients run; a subclass adds the I/O (`_aio` says
    which tritonclient it uses, `_open` makes its connection state)."""

    _aio = False

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
        self._module = triton_module(protocol)  # tensors: the aio clients take the same InferInput classes
        self._connector = triton_module(protocol, aio=self._aio)
        self._failures = failures(protocol, self._aio)  # what the shell catches and hands to Retry.failed
        self.url = url or DEFAULT_URLS[protocol]
        self.endpoints = Endpoints(self.url)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.on_retry = on_retry  # called with each refusal that is about to be retried (logging, counting)
        self.concurrency = max(1, concurrency)
        self.progress = progress
        self._models: dict[str, ServedModel] = {}
        self._open()

    def _open(self) -> None:
        """The shell's connection state."""

    # -- timeouts: the HTTP clients take theirs when made (for every request), the gRPC clients per call ----------
    def _connect(self, endpoint: str) -> Any:
        """A new connection to `endpoint` (tritonclient connects on first use)."""
        make = self._connector.InferenceServerClient
        if self.protocol == "grpc":
            return make(endpoint)
        if self._aio:
            return make(endpoint, conn_timeout=self.timeout_s)  # aiohttp's total time for each request
        return make(endpoint, connection_timeout=self.timeout_s, network_timeout=self.timeout_s)

    @property
    def _timed(self) -> dict[str, float]:
        return {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}

    # -- the requests ------------------------------------------------------------------------------------------
    def _config_call(self, name: str, endpoint: str | None = None) -> Call:
        """The config Triton serves `name` with, as JSON (the same fields over both protocols)."""
        if self.protocol == "grpc":
            kwargs = {"as_json": True, **self._timed}
            return Call("get_model_config", (name,), kwargs, name, endpoint, read=lambda a: dict(a["config"]))
        return Call("get_model_config", (name,), {}, name, endpoint, read=dict)

    def _infer_call(self, model: str, texts: list[str], request: EncodeRequest) -> Call:
        kwargs = {"outputs": requested_outputs(self._module, request), "priority": request.priority, **self._timed}
        inputs = build_inputs(self._module, texts, request)
        if request.chunk == WINDOWS:
            read: Callable[[Any], Any] = lambda result: _windows(result, request.output, len(texts))  # noqa: E731
        else:
            read = lambda result: _vectors_and_counts(result, request.output)  # noqa: E731
        return Call("infer", (model, inputs), kwargs, model, read=read)

    # -- the scripts -------------------------------------------------------------------------------------------
    def _model(self, name: str) -> Script[ServedModel]:
        if name not in self._models:
            self._models[name] = parse_config(name, (yield self._config_call(name)))
        return self._models[name]

    def _served(self) -> Script[list[ServedModel]]:
        index = yield Call("get_model_repository_index", kwargs=self._timed)
        served = []
        for name in ensemble_candidates(index, self.protocol):
            try:
                served.append((yield from self._model(name)))
            except (EmbedError, KeyError):
                continue  # not one of ours
        return sorted(served, key=lambda m: m.name)

    def _reload(self, model: str) -> Script[None]:
        """Every replica in turn: the ensemble's steps, each loaded again with its own config, marked."""
        for endpoint in self.endpoints.all():
            for step in ensemble_steps((yield self._config_call(model, endpoint))):
                config = marked_for_reload((yield self._config_call(step, endpoint)))
                yield Call("load_model", (step,), {"config": json.dumps(config), **self._timed}, model, endpoint)

    def _ready(self) -> Script[bool]:
        for endpoint in self.endpoints.all():
            try:
                if (yield Call("is_server_ready", kwargs=self._timed, endpoint=endpoint, retry=False)):
                    return True
            except Exception:
                continue  # a replica that cannot answer is not ready, whatever the failure
        return False

    def _planned(self, model: str, texts: Texts, options: dict[str, Any]) -> Script[_Plan]:
        values = texts_of(texts)  # before any request: a text with no UTF-8 form is the caller's error
        asked = EncodeRequest.make(**options)
        served = yield from self._model(model)
        request = asked.for_model(served)
        # CHUNK turns a text into as many windows as it needs, and a request carries at most max_batch_size:
        # one text per request (the server's batcher still runs the windows of concurrent requests together).
        per_request = 1 if request.chunk else max(1, served.max_batch_size)
        return _Plan(values, request, served, plan_chunks(values, per_request))

    def _encode(self, model: str, texts: Texts, options: dict[str, Any]) -> Script[tuple[np.ndarray, np.ndarray]]:
        """Sorted by length, cut into requests of at most max_batch_size, reassembled in the caller's order."""
        plan = yield from self._planned(model, texts, options)
        values, request, chunks = plan.values, plan.request, plan.chunks
        if request.chunk == WINDOWS:
            raise EmbedError("chunk='windows' returns several vectors per text: call encode_windows")
        if not values:
            return np.zeros((0, request.width(plan.served)), request.dtype), np.zeros((0,), np.int32)
        answers = yield [self._infer_call(model, [values[i] for i in c.positions], request) for c in chunks]
        vectors = reassemble(chunks, [a[0] for a in answers], len(values))
        return vectors, reassemble(chunks, [a[1] for a in answers], len(values))

    def _encode_windows(self, model: str, texts: Texts, options: dict[str, Any]) -> Script[list[TextWindows]]:
        """CHUNK windows: each text's windows, in the caller's order."""
        plan = yield from self._planned(model, texts, {**options, "chunk": WINDOWS})
        if not plan.values:
            return []
        texts_of_request = [[plan.values[i] for i in c.positions] for c in plan.chunks]
        answers = yield [self._infer_call(model, part, plan.request) for part in texts_of_request]
        return in_order(answers, [c.positions for c in plan.chunks], len(plan.values))

    def _progress_bar(self, requests: int) -> Any:
        """A tqdm bar over an encode's requests, when asked for and there is more than one."""
        if not self.progress or requests < 2:
            return None
        from tqdm import tqdm

        return tqdm(total=requests, unit="request", desc="encoding")


@dataclass(frozen=True)
class _Plan:
    """An encode call's texts, its request as sent to the served model, and the requests it is cut into."""

    values: list[str]
    request: EncodeRequest
    served: ServedModel
    chunks: list[Chunk]


def _vectors_and_counts(result: Any, output: str) -> tuple[np.ndarray, np.ndarray]:
    return result.as_numpy(output), result.as_numpy(TOKEN_COUNT).reshape(-1)


def _windows(result: Any, output: str, texts: int) -> list[TextWindows]:
    owner, tokens, chars = (result.as_numpy(name) for name in (CHUNK_TEXT, CHUNK_TOKENS, CHUNK_CHARS))
    return split_by_text(texts, owner, result.as_numpy(output), tokens, chars, result.as_numpy(TOKEN_COUNT))
