"""The SDK's instruction_kind: sent as INSTRUCTION_KIND only when set, by both clients; old specs still parse."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from instruct_embed.client import AsyncEmbedClient, EmbedClient, ServedModel
from instruct_embed.client.request import SPEC_PARAMETER, EncodeRequest, build_inputs, parse_config


class RecordingModule:
    """Stands in for tritonclient.http / .grpc: keeps each input's name and values."""

    class InferInput:
        def __init__(self, name: str, shape: list[int], datatype: str) -> None:
            self.input_name, self.shape, self.datatype = name, shape, datatype
            self.values: list[str] = []

        def set_data_from_numpy(self, array: np.ndarray) -> None:
            self.values = [row[0].decode("utf-8") for row in array]


def columns(request: EncodeRequest, texts: list[str]) -> dict[str, list[str]]:
    return {t.input_name: t.values for t in build_inputs(RecordingModule, texts, request)}


def test_instruction_kind_is_a_column_only_when_set() -> None:
    assert "INSTRUCTION_KIND" not in columns(EncodeRequest.make(task="sts"), ["a", "b"])
    assert "INSTRUCTION_KIND" not in columns(EncodeRequest.make(instruction_kind=""), ["a"])
    sent = columns(EncodeRequest.make(instruction_kind="symmetric"), ["a", "b"])
    assert sent == {"TEXT": ["a", "b"], "ROLE": ["document", "document"], "INSTRUCTION_KIND": ["symmetric"] * 2}


def test_instruction_kind_travels_with_task_and_instruction() -> None:
    request = EncodeRequest.make(is_query=True, task="scifact", instruction="x", instruction_kind="retrieval")
    assert columns(request, ["q"]) == {
        "TEXT": ["q"],
        "ROLE": ["query"],
        "TASK": ["scifact"],
        "INSTRUCTION": ["x"],
        "INSTRUCTION_KIND": ["retrieval"],
    }
    assert request.priority == 1  # the kind does not change a query's priority


def test_an_unknown_kind_is_left_for_the_server_to_refuse() -> None:
    # As with roles and tasks: the server's error names the allowed values.
    assert columns(EncodeRequest.make(instruction_kind="similarity"), ["a"])["INSTRUCTION_KIND"] == ["similarity"]


@pytest.mark.parametrize("module", [httpclient, grpcclient], ids=["http", "grpc"])
def test_real_tritonclient_inputs_carry_the_name(module: Any) -> None:
    inputs = build_inputs(module, ["a"], EncodeRequest.make(instruction_kind="symmetric"))
    assert [t.name() for t in inputs] == ["TEXT", "ROLE", "INSTRUCTION_KIND"]
    assert inputs[-1].datatype() == "BYTES" and inputs[-1].shape() == [1, 1]


def config(spec: dict[str, Any]) -> dict[str, Any]:
    return {"max_batch_size": 32, "parameters": {SPEC_PARAMETER: {"string_value": json.dumps(spec)}}}


OLD_SPEC = {  # what a server older than task kinds serves
    "dim": 4096,
    "max_length": 4096,
    "query_template": "Instruct: {task}\nQuery: {text}",
    "document_template": "{text}",
    "tasks": {"web_search": "Given a web search query, retrieve relevant passages", "sts": "Retrieve similar text."},
    "default_task": "web_search",
}


def test_a_spec_without_kinds_still_parses_every_task_retrieval() -> None:
    served = parse_config("e5-mistral", config(OLD_SPEC))
    assert served.symmetric_template == OLD_SPEC["query_template"]
    assert served.task_kinds == {"web_search": "retrieval", "sts": "retrieval"}
    assert served.tasks == OLD_SPEC["tasks"] and served.max_batch_size == 32


def test_a_spec_with_kinds_is_read() -> None:
    spec = {**OLD_SPEC, "symmetric_template": "{text}", "task_kinds": {"web_search": "retrieval", "sts": "symmetric"}}
    served = parse_config("bge", config(spec))
    assert served.symmetric_template == "{text}"
    assert served.task_kinds == {"web_search": "retrieval", "sts": "symmetric"}


def test_a_spec_naming_only_some_kinds_makes_the_rest_retrieval() -> None:
    served = parse_config("m", config({**OLD_SPEC, "task_kinds": {"sts": "symmetric"}}))
    assert served.task_kinds == {"sts": "symmetric", "web_search": "retrieval"}


def test_the_rendered_catalog_spec_parses() -> None:
    """The spec the server carries is the catalog's runtime_config: the client reads its kinds and templates."""
    from instruct_embed.catalog import get_spec

    for name in ("multilingual-e5-small", "e5-mistral-7b-instruct", "bge-large-en-v1.5"):
        spec = get_spec(name)
        served = parse_config(name, config(spec.runtime_config()))
        assert served.symmetric_template == spec.symmetric_template
        assert served.task_kinds == {task: str(t.kind) for task, t in spec.tasks.items()}
        assert served.task_kinds["sts"] == "symmetric" and served.task_kinds["scifact"] == "retrieval"


# -- both clients send it -------------------------------------------------------------------------------------------
E5 = ServedModel(
    name="e5",
    dim=2,
    max_batch_size=2,
    query_template="query: {text}",
    document_template="passage: {text}",
    tasks={"sts": "Retrieve semantically similar text."},
    default_task=None,
    max_length=512,
    task_kinds={"sts": "symmetric"},
)


class Result:
    def __init__(self, n: int) -> None:
        self.n = n

    def as_numpy(self, name: str) -> np.ndarray:
        if name == "EMBEDDING":
            return np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (self.n, 1))
        return np.ones((self.n, 1), dtype=np.int32)


class RecordingTriton:
    def __init__(self) -> None:
        self.requests: list[set[str]] = []

    def infer(self, model: str, inputs: list[Any], outputs: Any = None, priority: int = 0, **_: Any) -> Result:
        self.requests.append({t.name() for t in inputs})
        return Result(inputs[0].shape()[0])

    def close(self) -> None:
        pass


class AsyncRecordingTriton(RecordingTriton):
    async def infer(self, model: str, inputs: list[Any], outputs: Any = None, priority: int = 0, **_: Any) -> Result:
        return RecordingTriton.infer(self, model, inputs, outputs, priority)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_sync_client_sends_instruction_kind_in_every_request(protocol: str) -> None:
    triton = RecordingTriton()
    client = EmbedClient("127.0.0.1:1", protocol, concurrency=1, retries=0)  # one thread: its connection is ours
    client._models["e5"] = E5
    client._local.connections = {client.url: triton}
    vectors = client.encode("e5", ["a", "b", "c"], instruction_kind="symmetric")
    counts = client.encode_with_counts("e5", ["a"], task="sts")[1]
    client.encode_queries("e5", ["q"], instruction_kind="retrieval")
    assert vectors.shape == (3, 2) and counts.tolist() == [1]
    assert triton.requests == [
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},  # three texts in requests of at most two
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},
        {"TEXT", "ROLE", "TASK"},
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},
    ]


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_async_client_sends_instruction_kind_in_every_request(protocol: str) -> None:
    triton = AsyncRecordingTriton()

    async def run() -> np.ndarray:
        client = AsyncEmbedClient("127.0.0.1:1", protocol, retries=0)
        await client.close()
        client._clients[client.url] = triton
        client._models["e5"] = E5
        vectors = await client.encode("e5", ["a", "b", "c"], instruction_kind="symmetric", dimensions=2)
        await client.encode_documents("e5", ["d"], task="sts")
        await client.encode_queries("e5", ["q"], instruction_kind="retrieval")
        return vectors

    assert asyncio.run(run()).shape == (3, 2)
    assert triton.requests == [
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},
        {"TEXT", "ROLE", "TASK"},
        {"TEXT", "ROLE", "INSTRUCTION_KIND"},
    ]
