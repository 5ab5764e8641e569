"""The official openai client pointed at the gateway gets the SDK's vectors, and OpenAI-shaped errors."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest

from instruct_embed.client import EmbedClient
from instruct_embed.export.validate import cosine_rows
from tests.reliability_support import running_gateway

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"
API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def gateway(triton_server: Any) -> Iterator[str]:
    with running_gateway(triton_server.grpc_url, api_key=API_KEY, max_request_bytes=100_000) as url:
        yield url


@pytest.fixture(scope="module")
def openai_client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture(scope="module")
def sdk(triton_server: Any) -> Iterator[EmbedClient]:
    with EmbedClient(triton_server.grpc_url, "grpc") as client:
        yield client


TEXTS = ["how tall is mont blanc", "Mont Blanc is 4,806 m high.", "¿Dónde está el Louvre?"]


def vectors(response: Any) -> np.ndarray:
    return np.array([d.embedding for d in sorted(response.data, key=lambda d: d.index)], dtype=np.float32)


def test_queries_via_input_type(openai_client: openai.OpenAI, sdk: EmbedClient) -> None:
    response = openai_client.embeddings.create(model=E5, input=TEXTS, extra_body={"input_type": "query"})
    assert np.allclose(vectors(response), sdk.encode_queries(E5, TEXTS), atol=1e-6)
    assert response.usage.prompt_tokens == response.usage.total_tokens > len(TEXTS)


def test_queries_via_the_model_name_suffix(openai_client: openai.OpenAI, sdk: EmbedClient) -> None:
    response = openai_client.embeddings.create(model=f"{E5}-query", input=TEXTS)
    assert np.allclose(vectors(response), sdk.encode_queries(E5, TEXTS), atol=1e-6)


def test_documents_by_default_and_via_passage(openai_client: openai.OpenAI, sdk: EmbedClient) -> None:
    expected = sdk.encode_documents(E5, TEXTS)
    plain = openai_client.embeddings.create(model=E5, input=TEXTS)
    passage = openai_client.embeddings.create(model=f"{E5}-passage", input=TEXTS)
    assert np.allclose(vectors(plain), expected, atol=1e-6)
    assert np.allclose(vectors(passage), expected, atol=1e-6)


def test_base64_decodes_to_the_same_floats(gateway: str, sdk: EmbedClient) -> None:
    body = {"model": E5, "input": TEXTS[0], "encoding_format": "base64"}
    status, answer = post(gateway, body)
    assert status == 200
    decoded = np.frombuffer(base64.b64decode(answer["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, sdk.encode_documents(E5, TEXTS[:1])[0], atol=1e-6)


def test_dimensions_equal_to_the_native_size_are_honoured_and_others_refused(
    openai_client: openai.OpenAI, gateway: str
) -> None:
    response = openai_client.embeddings.create(model=E5, input="x", dimensions=384)
    assert len(response.data[0].embedding) == 384
    status, answer = post(gateway, {"model": E5, "input": "x", "dimensions": 128})
    assert status == 400
    assert answer["error"]["param"] == "dimensions" and "allowed: 384" in answer["error"]["message"]


def post(gateway: str, body: dict[str, Any], key: str | None = API_KEY) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{gateway}/v1/embeddings",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("body", "status", "param", "fragment"),
    [
        ({"model": E5}, 400, "input", "Field required"),
        ({"model": E5, "input": []}, 400, "input", "input is empty"),
        ({"model": E5, "input": "x", "input_type": "question"}, 400, "input_type", "allowed: query, passage"),
        ({"model": E5, "input": "x", "truncate": "MIDDLE"}, 400, "truncate", "allowed: END, START, NONE"),
        (
            {"model": E5, "input": "x", "instruction_kind": "similarity"},
            400,
            "instruction_kind",
            "allowed: retrieval, symmetric",
        ),
        (
            {"model": E5, "input": "x", "input_type": "clustering", "instruction_kind": "retrieval"},
            400,
            "instruction_kind",
            "means instruction_kind 'symmetric'",
        ),
        (  # refused by the server, named by the gateway
            {"model": E5, "input": "x", "task": "sts", "instruction_kind": "retrieval"},
            400,
            "instruction_kind",
            "TASK 'sts' is a symmetric task",
        ),
        (
            {"model": E5, "input": "x", "input_type": "classification", "task": "scifact"},
            400,
            "instruction_kind",
            "TASK 'scifact' is a retrieval task",
        ),
        ({"model": E5, "input": "x", "instruction": "free text"}, 400, "instruction", "takes no free-text"),
        ({"model": "no-such-model", "input": "x"}, 404, "model", "no-such-model"),
        ({"model": E5, "input": "x" * 200_000}, 413, None, "exceeds the limit"),
    ],
)
def test_bad_requests_get_the_openai_error_shape(
    gateway: str, body: dict[str, Any], status: int, param: str | None, fragment: str
) -> None:
    code, answer = post(gateway, body)
    assert code == status
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["param"] == param and fragment in answer["error"]["message"]


def test_a_wrong_api_key_is_refused(gateway: str) -> None:
    code, answer = post(gateway, {"model": E5, "input": "x"}, key="wrong")
    assert code == 401 and answer["error"]["type"] == "authentication_error"
    code, _ = post(gateway, {"model": E5, "input": "x"}, key=None)
    assert code == 401


def test_models_and_health(openai_client: openai.OpenAI, gateway: str) -> None:
    assert E5 in {m.id for m in openai_client.models.list()}
    with urllib.request.urlopen(
        urllib.request.Request(f"{gateway}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}), timeout=10
    ) as response:
        cards = {card["id"]: card for card in json.loads(response.read())["data"]}
    assert cards[E5]["symmetric_template"] == "query: {text}"
    assert cards[E5]["task_kinds"]["sts"] == "symmetric" and cards[E5]["task_kinds"]["scifact"] == "retrieval"
    assert sorted(cards[E5]["task_kinds"]) == cards[E5]["tasks"]
    with urllib.request.urlopen(f"{gateway}/health/ready", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ready"}


def test_a_symmetric_task_embeds_passages_as_queries(openai_client: openai.OpenAI, sdk: EmbedClient) -> None:
    queries = sdk.encode_queries(E5, TEXTS)
    for extra_body in (
        {"task": "sts"},
        {"task": "sts", "input_type": "passage"},
        {"task": "sts", "instruction_kind": "symmetric"},
        {"instruction_kind": "symmetric"},  # e5: no task needed, its symmetric template is "query: "
        {"input_type": "classification"},
        {"input_type": "clustering", "task": "twenty_newsgroups"},
    ):
        response = openai_client.embeddings.create(model=f"{E5}-passage", input=TEXTS, extra_body=extra_body)
        assert float(cosine_rows(vectors(response), queries).min()) >= 0.99999, extra_body
    assert np.allclose(vectors(response), sdk.encode_documents(E5, TEXTS, task="twenty_newsgroups"), atol=1e-6)


def test_a_retrieval_task_keeps_the_passage_template(openai_client: openai.OpenAI, sdk: EmbedClient) -> None:
    passages = sdk.encode_documents(E5, TEXTS)
    documents = openai_client.embeddings.create(model=E5, input=TEXTS, extra_body={"task": "scifact"})
    said = openai_client.embeddings.create(
        model=E5, input=TEXTS, extra_body={"task": "scifact", "instruction_kind": "retrieval"}
    )
    queries = openai_client.embeddings.create(model=f"{E5}-query", input=TEXTS, extra_body={"task": "scifact"})
    assert float(cosine_rows(vectors(documents), passages).min()) >= 0.99999
    assert float(cosine_rows(vectors(said), passages).min()) >= 0.99999
    assert float(cosine_rows(vectors(documents), vectors(queries)).max()) < 0.9999
