"""Truncation end to end: END (default), START and NONE through the SDK (HTTP, gRPC) and the gateway.

START drops tokens from the start of the *text* and keeps the template and instruction: a long query truncated
at the start is still a query. NONE refuses an over-length text and says how to proceed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from instruct_embed.client import EmbedClient, InvalidRequest
from tests.reliability_support import E5, cosine, running_gateway

pytestmark = pytest.mark.integration

MINILM = "all-MiniLM-L6-v2"
LIMITS = {E5: 512, MINILM: 256}
# Distinct words, so that the start and the end of a long text embed differently.
TAIL = " ".join(f"tail{i}" for i in range(700))
LONG = " ".join(f"head{i}" for i in range(700)) + " " + TAIL
OTHER_HEAD = " ".join(f"other{i}" for i in range(300)) + " " + TAIL


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request: pytest.FixtureRequest, triton_server: Any) -> Iterator[EmbedClient]:
    url = triton_server.http_url if request.param == "http" else triton_server.grpc_url
    with EmbedClient(url, request.param) as embed_client:
        yield embed_client


@pytest.mark.parametrize("model", [E5, MINILM])
def test_end_is_the_default_and_reports_the_model_limit(client: EmbedClient, model: str) -> None:
    default, counts = client.encode_with_counts(model, [LONG, "short text"])
    end, end_counts = client.encode_with_counts(model, [LONG, "short text"], truncate="end")
    assert counts.tolist() == end_counts.tolist()
    assert counts[0] == LIMITS[model] and counts[1] < 10
    assert cosine(default[0], end[0]) > 0.99999


@pytest.mark.parametrize("model", [E5, MINILM])
def test_start_keeps_the_end_of_the_text(client: EmbedClient, model: str) -> None:
    start, counts = client.encode_with_counts(model, [LONG, OTHER_HEAD], truncate="start")
    end = client.encode(model, [LONG], truncate="end")
    assert counts.tolist() == [LIMITS[model]] * 2
    assert cosine(start[0], start[1]) > 0.99999  # the same last tokens whatever came before them
    assert cosine(start[0], end[0]) < 0.99


def test_start_keeps_the_template_prefix(client: EmbedClient) -> None:
    # Were the "query: " / "passage: " prefix cut with the head of the text, both would be the same tokens.
    query = client.encode(E5, [LONG], role="query", truncate="start")
    document = client.encode(E5, [LONG], role="document", truncate="start")
    assert cosine(query[0], document[0]) < 0.999


def test_none_embeds_a_text_within_the_limit_like_end(client: EmbedClient) -> None:
    none, counts = client.encode_with_counts(E5, ["a short text"], truncate="none")
    end = client.encode(E5, ["a short text"])
    assert counts.tolist() == [7] and cosine(none[0], end[0]) > 0.99999


def test_none_refuses_an_over_length_text(client: EmbedClient) -> None:
    just_over = " ".join(f"w{i}" for i in range(300))  # about 600 tokens: counted exactly (no window)
    with pytest.raises(InvalidRequest) as raised:
        client.encode(E5, ["fine", just_over], truncate="none")
    message = str(raised.value.server_message)
    assert "text 1 has" in message and "more than the model's limit of 512" in message
    assert "send TRUNCATE 'end' or 'start'" in message


@pytest.fixture(scope="module")
def gateway(triton_server: Any) -> Iterator[str]:
    with running_gateway(triton_server.grpc_url) as url:
        yield url


def embed(gateway: str, **body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{gateway}/v1/embeddings",
        data=json.dumps({"model": E5, **body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_gateway_takes_truncate_in_any_case(gateway: str, triton_server: Any) -> None:
    with EmbedClient(triton_server.grpc_url, "grpc") as sdk:
        expected = {mode: sdk.encode(E5, [LONG], truncate=mode)[0] for mode in ("end", "start")}
    for sent, mode in (("END", "end"), ("start", "start"), (None, "end")):
        status, answer = embed(gateway, input=LONG, **({"truncate": sent} if sent else {}))
        assert status == 200 and answer["usage"]["prompt_tokens"] == 512
        assert cosine(np.asarray(answer["data"][0]["embedding"]), expected[mode]) > 0.99999
    status, answer = embed(gateway, input=LONG, truncate="NONE")
    assert status == 400 and answer["error"]["param"] == "truncate"
    assert "more than the model's limit of 512" in answer["error"]["message"]
