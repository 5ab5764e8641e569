"""Gateway request mapping that needs no server: roles from input_type or the model-name suffix, base64,
instruction_kind (checked here, passed through as INSTRUCTION_KIND), server refusals mapped to their field."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from instruct_embed.gateway.app import (
    GatewaySettings,
    _param_of,
    create_app,
    encode_vector,
    resolve_instruction_kind,
    resolve_model_and_role,
)
from instruct_embed.gateway.errors import GatewayError
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt


@pytest.mark.parametrize(
    ("model", "input_type", "expected"),
    [
        ("e5", None, ("e5", "document")),
        ("e5", "query", ("e5", "query")),
        ("e5", "passage", ("e5", "document")),
        ("e5-query", None, ("e5", "query")),
        ("e5-passage", None, ("e5", "document")),
        ("e5-passage", "query", ("e5", "query")),  # an explicit input_type wins over the suffix
    ],
)
def test_role_resolution(model: str, input_type: str | None, expected: tuple[str, str]) -> None:
    assert resolve_model_and_role(model, input_type) == expected


def test_unknown_input_type_is_a_400_naming_the_allowed_values() -> None:
    with pytest.raises(GatewayError, match="allowed: query, passage, document") as raised:
        resolve_model_and_role("e5", "question")
    assert raised.value.status == 400 and raised.value.param == "input_type"


def test_base64_is_little_endian_float32() -> None:
    vector = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    decoded = np.frombuffer(base64.b64decode(encode_vector(vector, "base64")), dtype="<f4")
    assert decoded.tolist() == [0.5, -1.25, 3.0]
    assert encode_vector(vector, "float") == [0.5, -1.25, 3.0]


# -- instruction_kind -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("input_type", "instruction_kind", "expected"),
    [
        (None, None, None),  # unset: the task's kind decides on the server, else retrieval
        (None, "retrieval", "retrieval"),
        (None, "symmetric", "symmetric"),
        ("query", "symmetric", "symmetric"),  # a symmetric kind puts one template on every role
        ("classification", None, "symmetric"),
        ("clustering", None, "symmetric"),
        ("clustering", "symmetric", "symmetric"),
        ("passage", None, None),
    ],
)
def test_instruction_kind_resolution(
    input_type: str | None, instruction_kind: str | None, expected: str | None
) -> None:
    assert resolve_instruction_kind(input_type, instruction_kind) == expected


def test_classification_and_clustering_are_documents_of_a_symmetric_kind() -> None:
    assert resolve_model_and_role("e5", "classification") == ("e5", "document")
    assert resolve_model_and_role("e5-query", "clustering") == ("e5", "document")


@pytest.mark.parametrize("bad", ["similarity", "Symmetric", "", "query"])
def test_an_unknown_instruction_kind_is_a_400_naming_the_allowed_values(bad: str) -> None:
    with pytest.raises(GatewayError, match="allowed: retrieval, symmetric") as raised:
        resolve_instruction_kind(None, bad)
    assert raised.value.status == 400 and raised.value.param == "instruction_kind"
    assert raised.value.type == "invalid_request_error"


def test_input_type_and_instruction_kind_must_agree() -> None:
    with pytest.raises(GatewayError, match="input_type 'classification' means instruction_kind 'symmetric'") as raised:
        resolve_instruction_kind("classification", "retrieval")
    assert raised.value.status == 400 and raised.value.param == "instruction_kind"


def server_refusal(templates: PromptTemplates, **request: str) -> str:
    """The message the server's own prompt resolution refuses `request` with."""
    with pytest.raises(RequestError) as raised:
        resolve_prompt(templates, "text", **request)
    return str(raised.value)


E5_TEMPLATES = PromptTemplates(
    "query: {text}", "passage: {text}", {"sts": "Retrieve similar text.", "scifact": "Retrieve documents."},
    model_name="e5", task_kinds={"sts": "symmetric", "scifact": "retrieval"},
)  # fmt: skip
MISTRAL_TEMPLATES = PromptTemplates(
    "Instruct: {task}\nQuery: {text}", "{text}", {"sts": "Retrieve similar text.", "web": "Retrieve passages."},
    default_task="web", model_name="e5-mistral", task_kinds={"sts": "symmetric", "web": "retrieval"},
)  # fmt: skip


@pytest.mark.parametrize(
    ("templates", "request_", "param"),
    [
        (E5_TEMPLATES, {"kind": "similarity"}, "instruction_kind"),
        (E5_TEMPLATES, {"task": "sts", "kind": "retrieval"}, "instruction_kind"),
        (E5_TEMPLATES, {"task": "scifact", "kind": "symmetric"}, "instruction_kind"),
        (E5_TEMPLATES, {"instruction": "free text"}, "instruction"),
        (E5_TEMPLATES, {"task": "no-such-task"}, "task"),
        (MISTRAL_TEMPLATES, {"kind": "symmetric"}, "task"),
        (E5_TEMPLATES, {"role": "passage"}, "input"),
    ],
)
def test_server_refusals_name_the_request_field(
    templates: PromptTemplates, request_: dict[str, str], param: str
) -> None:
    assert _param_of(server_refusal(templates, **request_)) == param


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ("unknown CHUNK 'all'; allowed: windows, mean (or none: truncate)", "chunk"),
        (
            "CHUNK_OVERLAP 600 must be at least 0 and less than the 508 text tokens a window of text 0 holds",
            "chunk_overlap",
        ),
        ("CHUNK made 80 windows of these 1 texts, more than the 64 rows one request may carry", "chunk"),
        ("output_type 'int8': model 'm' serves float, binary, ubinary", "embedding_type"),
    ],
)
def test_chunk_and_storage_refusals_name_their_field(message: str, param: str) -> None:
    assert _param_of(message) == param


# -- the endpoint passes instruction_kind through ------------------------------------------------------------------
class RecordingTriton:
    """Stands in for the gateway's AsyncEmbedClient: records what each encode was asked for."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    async def encode_with_counts(
        self, model: str, texts: list[str], **options: object
    ) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append({"model": model, **options})
        return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2), np.ones(len(texts), dtype=np.int32)


def post(app: object, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """One POST /v1/embeddings through the ASGI app (no HTTP client library needed)."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/embeddings", "raw_path": b"/v1/embeddings", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    received: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        received.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    status = next(int(m["status"]) for m in received if m["type"] == "http.response.start")  # type: ignore[call-overload]
    answer = b"".join(m.get("body", b"") for m in received if m["type"] == "http.response.body")  # type: ignore[misc]
    return status, json.loads(answer)


@pytest.fixture
def gateway() -> tuple[object, RecordingTriton]:
    app = create_app(GatewaySettings())
    triton = RecordingTriton()
    app.state.triton = triton  # the lifespan, which would connect to Triton, does not run
    return app, triton


@pytest.mark.parametrize(
    ("extra", "role", "kind"),
    [
        ({}, "document", None),
        ({"instruction_kind": "symmetric", "task": "sts"}, "document", "symmetric"),
        ({"instruction_kind": "retrieval", "input_type": "query"}, "query", "retrieval"),
        ({"input_type": "classification", "task": "banking77"}, "document", "symmetric"),
        ({"input_type": "clustering", "instruction_kind": "symmetric"}, "document", "symmetric"),
    ],
)
def test_the_endpoint_sends_instruction_kind(
    gateway: tuple[object, RecordingTriton], extra: dict[str, str], role: str, kind: str | None
) -> None:
    app, triton = gateway
    status, answer = post(app, {"model": "e5", "input": ["a", "b"], **extra})
    assert status == 200, answer
    assert triton.calls == [
        {"model": "e5", "role": role, "task": extra.get("task"), "instruction": None, "instruction_kind": kind,
         "truncate": "end", "dimensions": None, "output_type": "float", "chunk_overlap": None, "chunk": None}
    ]  # fmt: skip


def test_the_endpoint_sends_the_storage_type_and_chunk_mode(gateway: tuple[object, RecordingTriton]) -> None:
    app, triton = gateway
    body = {"model": "e5", "input": "a", "embedding_type": "ubinary", "chunk": "mean", "chunk_overlap": 8}
    status, answer = post(app, body)
    assert status == 200, answer
    (call,) = triton.calls
    assert (call["output_type"], call["chunk"], call["chunk_overlap"]) == ("ubinary", "mean", 8)
    status, answer = post(app, {"model": "e5", "input": "a", "embedding_type": "int4"})
    assert status == 400 and "embedding_type" in json.dumps(answer)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"instruction_kind": "similarity"}, "unknown instruction_kind 'similarity'; allowed: retrieval, symmetric"),
        ({"input_type": "clustering", "instruction_kind": "retrieval"}, "means instruction_kind 'symmetric'"),
        ({"instruction_kind": 3}, "invalid request"),
    ],
)
def test_a_bad_instruction_kind_is_an_openai_shaped_400(
    gateway: tuple[object, RecordingTriton], extra: dict[str, object], fragment: str
) -> None:
    app, triton = gateway
    status, answer = post(app, {"model": "e5", "input": "x", **extra})
    assert status == 400 and not triton.calls
    error = answer["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}
    assert error["param"] == "instruction_kind" and error["type"] == "invalid_request_error"
    assert fragment in error["message"]
