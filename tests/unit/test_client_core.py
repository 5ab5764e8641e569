"""The client core (client/core.py) without a server: the requests its scripts ask for and in which order, its
retry and failover decisions, and that EmbedClient and AsyncEmbedClient, which only perform those requests,
behave alike for the same scripted failures."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from instruct_embed.client import AsyncEmbedClient, EmbedClient, InvalidRequest, ServerUnavailable
from instruct_embed.client import core as core_module
from instruct_embed.client.core import Call, ClientCore, Retry, Run
from instruct_embed.client.errors import ModelNotFound
from instruct_embed.runtime.contract import SPEC_PARAMETER
from instruct_embed.server.repository_api import RELOAD_PARAMETER

SPEC = {"dim": 2, "max_length": 512, "query_template": "query: {text}", "document_template": "passage: {text}"}


def config(max_batch_size: int = 2, steps: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "max_batch_size": max_batch_size,
        "parameters": {SPEC_PARAMETER: {"string_value": json.dumps(SPEC)}},
        "ensemble_scheduling": {"step": [{"model_name": s} for s in steps]},
    }


class Tensors:
    """Stands in for tritonclient's tensor classes: each input keeps its values."""

    class InferInput:
        def __init__(self, name: str, shape: list[int], datatype: str) -> None:
            self.input_name, self.rows = name, shape[0]
            self.values: list[Any] = []

        def set_data_from_numpy(self, array: np.ndarray) -> None:
            self.values = [row[0].decode("utf-8") if isinstance(row[0], bytes) else row[0] for row in array]

    class InferRequestedOutput:
        def __init__(self, name: str) -> None:
            self.name = name


class Answer:
    """An infer result whose rows say which text they belong to: [len(text), 0], token count len(text)."""

    def __init__(self, texts: list[str]) -> None:
        self.lengths = [len(t) for t in texts]

    def as_numpy(self, name: str) -> np.ndarray:
        if name == "EMBEDDING":
            return np.array([[n, 0.0] for n in self.lengths], dtype=np.float32)
        return np.array([[n] for n in self.lengths], dtype=np.int32)


def texts_of(call: Call) -> list[str]:
    return next(t.values for t in call.args[1] if t.input_name == "TEXT")


# -- the plan ------------------------------------------------------------------------------------------------------
def test_encode_asks_for_the_config_then_length_sorted_chunks_and_reassembles_in_input_order() -> None:
    core = ClientCore("a:1")
    core._module = Tensors
    texts = ["ccc", "a", "eeeee", "bb", "dddd"]
    run = Run(core._encode("e5", texts, {"is_query": True}))
    assert isinstance(run.step, Call) and run.step.method == "get_model_config" and run.step.args == ("e5",)
    run.send(config(max_batch_size=2))
    assert isinstance(run.step, list)
    assert [texts_of(call) for call in run.step] == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert {call.kwargs["priority"] for call in run.step} == {1}  # queries go ahead of bulk
    run.send([call.read(Answer(texts_of(call))) for call in run.step])  # as a shell reads each answer
    assert run.done
    vectors, counts = run.result
    assert vectors[:, 0].tolist() == [3, 1, 5, 2, 4] and counts.tolist() == [3, 1, 5, 2, 4]


def test_the_config_is_cached_and_empty_input_sends_nothing() -> None:
    core = ClientCore("a:1")
    run = Run(core._encode("e5", ["x"], {}))
    run.send(config())
    again = Run(core._encode("e5", [], {"dimensions": 2}))
    assert again.done, "no config request (cached) and no infer request (nothing to embed)"
    vectors, counts = again.result
    assert vectors.shape == (0, 2) and counts.shape == (0,)


def test_a_text_without_utf8_is_refused_before_any_request() -> None:
    with pytest.raises(InvalidRequest, match="text 1 is not valid UTF-8"):
        Run(ClientCore("a:1")._encode("e5", ["ok", "\ud800"], {}))


def test_dimensions_equal_to_the_width_are_not_sent() -> None:
    core = ClientCore("a:1")
    core._module = Tensors
    run = Run(core._encode("e5", ["x"], {"dimensions": 2}))
    run.send(config())
    assert [t.input_name for t in run.step[0].args[1]] == ["TEXT", "ROLE"]


def test_reload_loads_each_step_with_a_marked_config_on_every_replica_in_turn() -> None:
    run = Run(ClientCore("a:1,b:1")._reload("e5"))
    asked = []
    while not run.done:
        call = run.step
        asked.append(("load" if call.method == "load_model" else "config", call.args[0], call.endpoint))
        if call.method == "load_model":
            loaded = json.loads(call.kwargs["config"])
            assert loaded["max_batch_size"] == 8 and RELOAD_PARAMETER in loaded["parameters"]
        run.send(config(steps=("e5_preprocess", "e5_encoder")) if call.args[0] == "e5" else config(8))
    one = [("config", "e5"), ("config", "e5_preprocess"), ("load", "e5_preprocess")]
    one += [("config", "e5_encoder"), ("load", "e5_encoder")]
    assert [(verb, name) for verb, name, _ in asked] == one * 2
    assert [endpoint for _, _, endpoint in asked] == ["a:1"] * 5 + ["b:1"] * 5


def test_models_skips_step_models_models_without_a_spec_and_configs_that_fail() -> None:
    run = Run(ClientCore("a:1")._served())
    assert run.step.method == "get_model_repository_index"
    index = [{"name": n, "state": "READY"} for n in ("e5", "e5_encoder", "plain", "broken")]
    run.send([*index, {"name": "loading", "state": "LOADING"}])
    for name in ("e5", "plain", "broken"):
        assert run.step.args == (name,)
        if name == "broken":
            run.throw(ModelNotFound("gone"))
        else:
            run.send(config() if name == "e5" else {"parameters": {}})
    assert run.done and [m.name for m in run.result] == ["e5"]


def test_grpc_gets_its_timeout_per_call_and_http_when_connecting() -> None:
    made: list[dict[str, Any]] = []

    class Connector:
        def InferenceServerClient(self, endpoint: str, **options: Any) -> None:
            made.append(options)

    for client in (EmbedClient("a:1", "http", timeout_s=7), AsyncEmbedClient("a:1", "http", timeout_s=7)):
        client._connector = Connector()
        client._connect("a:1")
        assert client._config_call("m").kwargs == {}
    assert made == [{"connection_timeout": 7, "network_timeout": 7}, {"conn_timeout": 7}]
    for grpc in (EmbedClient("a:1", "grpc", timeout_s=7), AsyncEmbedClient("a:1", "grpc", timeout_s=7)):
        assert grpc._config_call("m").kwargs == {"as_json": True, "client_timeout": 7}
        assert grpc._infer_call("m", ["x"], _request()).kwargs["client_timeout"] == 7


def _request() -> Any:
    from instruct_embed.client.request import EncodeRequest

    return EncodeRequest.make()


# -- the retry and failover policy ---------------------------------------------------------------------------------
def unavailable(message: str) -> InferenceServerException:
    return InferenceServerException(message, status="StatusCode.UNAVAILABLE")


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_module.random, "uniform", lambda low, high: 1.0)


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("timed out"),
        ConnectionRefusedError(111, "Connection refused"),
        unavailable("failed to connect to all addresses"),
        InferenceServerException("Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"),
        unavailable("Server is stopping"),
    ],
    ids=["timeout", "refused", "grpc-unreachable", "grpc-deadline", "stopping"],
)
def test_a_gone_replica_is_marked_down_its_connection_dropped_and_the_next_one_tried_at_once(
    error: BaseException,
) -> None:
    retried: list[ServerUnavailable] = []
    core = ClientCore("a:1,b:1", on_retry=retried.append)
    retry = Retry(core, Call("infer", model="e5"))
    first = retry.target()
    then = retry.failed(first, error)
    assert then.wait_s == 0.0 and then.reset
    assert core.endpoints.healthy() == 1 and len(retried) == 1
    assert {retry.target() for _ in range(3)} == {"a:1", "b:1"} - {first}


def test_a_full_queue_backs_off_on_the_same_replicas_and_keeps_the_connection(no_jitter: None) -> None:
    core = ClientCore("a:1,b:1", backoff_s=0.2)
    retry = Retry(core, Call("infer", model="e5"))
    waits = [retry.failed("a:1", unavailable("exceeds maximum queue size")) for _ in range(3)]
    assert [w.wait_s for w in waits] == pytest.approx([0.2, 0.4, 0.8])
    assert not any(w.reset for w in waits)
    assert core.endpoints.healthy() == 2, "a loaded replica is not marked down"


@pytest.mark.parametrize(
    ("error", "typed"),
    [
        (InferenceServerException("unknown role 'passage'", status="400"), InvalidRequest),
        (InferenceServerException("Request for unknown model: 'x' is not found", status="400"), ModelNotFound),
    ],
)
def test_a_refused_request_is_final(error: InferenceServerException, typed: type[Exception]) -> None:
    retried: list[ServerUnavailable] = []
    core = ClientCore("a:1,b:1", on_retry=retried.append)
    with pytest.raises(typed) as raised:
        Retry(core, Call("infer", model="x")).failed("a:1", error)
    assert raised.value.server_message == error.message()
    assert not retried and core.endpoints.healthy() == 2


def test_retries_run_out_and_the_last_refusal_is_raised() -> None:
    retry = Retry(ClientCore("a:1,b:1", retries=1), Call("infer"))
    retry.failed("a:1", TimeoutError("timed out"))
    with pytest.raises(ServerUnavailable, match="server unreachable at b:1: timed out"):
        retry.failed("b:1", TimeoutError("timed out"))


def test_a_call_pinned_to_a_replica_waits_for_it_and_a_probe_does_not_retry(no_jitter: None) -> None:
    core = ClientCore("a:1,b:1", backoff_s=0.2)
    pinned = Retry(core, Call("load_model", endpoint="b:1"))
    then = pinned.failed("b:1", ConnectionRefusedError("refused"))
    assert then.wait_s == 0.2 and then.reset and pinned.target() == "b:1"
    with pytest.raises(ServerUnavailable):
        Retry(core, Call("is_server_ready", endpoint="a:1", retry=False)).failed("a:1", OSError("down"))


# -- both clients, the same scripted failures ----------------------------------------------------------------------
class Replica:
    """A fake tritonclient connection's server: scripted failures for infer, then answers; logs every request."""

    def __init__(self, name: str, log: list[str], failures: list[BaseException]) -> None:
        self.name, self.log, self.failures = name, log, failures

    def answer(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.log.append(f"{method}@{self.name}")
        if method == "infer" and self.failures:
            raise self.failures.pop(0)
        if method == "get_model_config":
            return {"config": config(2)} if kwargs.get("as_json") else config(2)
        if method == "is_server_ready":
            return True
        return Answer(["x"] * args[1][0].shape()[0])


class SyncConnection:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        replica.log.append(f"connect@{replica.name}")

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: self.replica.answer(method, *args, **kwargs)

    def close(self) -> None:
        pass


class AsyncConnection(SyncConnection):
    def __getattr__(self, method: str) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return self.replica.answer(method, *args, **kwargs)

        return call

    async def close(self) -> None:
        pass


def run_one(
    client_type: type[Any],
    protocol: str,
    url: str,
    failures: dict[str, list[BaseException]],
    texts: list[str],
    **settings: Any,
) -> tuple[list[str], Any, list[str]]:
    """(request log, result or the error raised, retries reported) of one client against scripted replicas."""
    log: list[str] = []
    retried: list[str] = []
    replicas = {e: Replica(e, log, list(failures.get(e, []))) for e in url.split(",")}
    connection = AsyncConnection if client_type is AsyncEmbedClient else SyncConnection
    client = client_type(
        url, protocol, concurrency=1, backoff_s=0.0, on_retry=lambda e: retried.append(str(e)), **settings
    )
    client._connect = lambda endpoint: connection(replicas[endpoint])

    async def in_loop() -> Any:
        return await client.encode_with_counts("e5", texts)

    try:
        result: Any = (
            asyncio.run(in_loop()) if client_type is AsyncEmbedClient else client.encode_with_counts("e5", texts)
        )
    except Exception as error:
        result = error
    return log, result, retried


def run_both(*script: Any, **settings: Any) -> dict[str, tuple[list[str], Any, list[str]]]:
    return {kind: run_one(t, *script, **settings) for kind, t in (("sync", EmbedClient), ("async", AsyncEmbedClient))}


def same(outcomes: dict[str, tuple[list[str], Any, list[str]]]) -> tuple[list[str], Any, list[str]]:
    (sync_log, sync_result, sync_retried), (async_log, async_result, async_retried) = outcomes.values()
    assert sync_log == async_log and sync_retried == async_retried
    if isinstance(sync_result, Exception):
        assert type(sync_result) is type(async_result) and str(sync_result) == str(async_result)
    else:
        for ours, theirs in zip(sync_result, async_result, strict=True):
            np.testing.assert_array_equal(ours, theirs)
    return sync_log, sync_result, sync_retried


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_both_clients_fail_over_from_an_unreachable_replica_the_same_way(protocol: str) -> None:
    refused = [ConnectionRefusedError(111, "Connection refused")]
    log, result, retried = same(run_both(protocol, "a:1,b:1", {"b:1": refused}, ["p", "qq", "rrr"]))
    assert log == [
        "connect@a:1",
        "get_model_config@a:1",
        "connect@b:1",
        "infer@b:1",  # refused: b is marked down, its connection dropped, the request goes to a at once
        "infer@a:1",
        "infer@a:1",  # b still cooling down
    ]
    assert result[0].shape == (3, 2) and len(retried) == 1


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_both_clients_back_off_on_a_full_queue_without_reconnecting(protocol: str) -> None:
    full = [unavailable("exceeds maximum queue size of 8"), unavailable("exceeds maximum queue size of 8")]
    log, result, retried = same(run_both(protocol, "a:1", {"a:1": full}, ["p"]))
    assert log == ["connect@a:1", "get_model_config@a:1", "infer@a:1", "infer@a:1", "infer@a:1"]
    assert result[1].tolist() == [1] and len(retried) == 2


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_both_clients_reconnect_after_a_timeout(protocol: str) -> None:
    log, _, _ = same(run_both(protocol, "a:1", {"a:1": [TimeoutError("timed out")]}, ["p"]))
    assert log == ["connect@a:1", "get_model_config@a:1", "infer@a:1", "connect@a:1", "infer@a:1"]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_both_clients_raise_a_bad_request_at_once(protocol: str) -> None:
    refused = [InferenceServerException("unknown role 'passage'; allowed: query, document, raw", status="400")]
    log, error, retried = same(run_both(protocol, "a:1,b:1", {"b:1": refused}, ["p"]))
    assert isinstance(error, InvalidRequest) and "allowed: query" in str(error)
    assert log[-1] == "infer@b:1" and log.count("infer@b:1") == 1 and not retried


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_both_clients_give_up_after_their_retries(protocol: str) -> None:
    down = [unavailable("Stub process 'e5_encoder_0' is not healthy")] * 5
    log, error, retried = same(run_both(protocol, "a:1", {"a:1": down}, ["p"], retries=2))
    assert isinstance(error, ServerUnavailable) and "is not healthy" in str(error)
    assert log.count("infer@a:1") == 3 and len(retried) == 2


def test_both_clients_take_the_same_options() -> None:
    sync_options = inspect.signature(EmbedClient).parameters
    assert inspect.signature(AsyncEmbedClient).parameters == sync_options
    assert {"timeout_s", "retries", "backoff_s", "concurrency", "on_retry", "progress"} <= set(sync_options)
