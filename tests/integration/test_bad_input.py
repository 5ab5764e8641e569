"""Every bad input of the reliability table (docs/reliability.md) against the real server and the gateway.

Each gets its documented outcome, over HTTP and gRPC: a refusal naming what was wrong (and what is allowed), or
a documented behaviour (an empty text embeds its template; a 1 MB text is truncated). Meanwhile good requests
run alongside, and none of their vectors changes; afterwards a known query still returns its golden vector.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from instruct_embed.client import EmbedClient, InvalidRequest
from tests.reliability_support import E5, cosine, golden, running_gateway

pytestmark = pytest.mark.integration

MEGABYTE_TEXT = "word " * 200_000  # 1 MB, 200,000 tokens
STATUS = {"http": {400: "400", 404: "404"}, "grpc": {400: "StatusCode.INVALID_ARGUMENT", 404: "StatusCode.NOT_FOUND"}}


def column(values: list[Any]) -> np.ndarray:
    array = np.empty((len(values), 1), dtype=object)
    for i, value in enumerate(values):
        array[i, 0] = value
    return array


@dataclass(frozen=True)
class Case:
    name: str
    inputs: list[tuple[str, str, np.ndarray]]  # (tensor name, datatype, data)
    status: int | None = None  # None: it embeds
    message: str = ""
    tokens: int | None = None  # TOKEN_COUNT of the first row, when it embeds
    model: str = E5


def text(*values: bytes, **optional: bytes) -> list[tuple[str, str, np.ndarray]]:
    inputs = [("TEXT", "BYTES", column(list(values)))]
    for name, value in optional.items():
        inputs.append((name.upper(), "BYTES", column([value] * len(values))))
    return inputs


CASES = [
    # Valid texts that embed. The empty text is the template alone: <s> ▁passage : ▁ </s>.
    Case("empty string", text(b""), tokens=5),
    Case("whitespace only", text(b" \t\n  "), tokens=5),
    Case("1 MB text, truncated at the end", text(MEGABYTE_TEXT.encode()), tokens=512),
    Case("1 MB text, truncated at the start", text(MEGABYTE_TEXT.encode(), truncate=b"start"), tokens=512),
    Case("NUL bytes (a character like any other)", text(b"a\x00b"), tokens=7),
    Case("emoji", text("👍🏽 great 🎉".encode()), tokens=None),
    Case("right-to-left", text("שלום עולם مرحبا بالعالم".encode()), tokens=None),
    Case("combining characters", text("e\u0301te\u0301 Å".encode()), tokens=None),
    # Refusals by the preprocess step: 400 / INVALID_ARGUMENT, the message names the fault and the legal values.
    Case(
        "1 MB text with truncate none",
        text(MEGABYTE_TEXT.encode(), truncate=b"none"),
        400,
        "text 0 has at least 848 tokens, more than the model's limit of 512; shorten it or send TRUNCATE 'end' or "
        "'start'",
    ),
    Case("invalid UTF-8", text(b"ok \xff\xfe"), 400, "TEXT row 0 is not valid UTF-8 (invalid start byte at byte 3)"),
    Case("unknown role", text(b"x", role=b"passage"), 400, "unknown ROLE 'passage'; allowed: query, document, raw"),
    Case("unknown task", text(b"x", role=b"query", task=b"nope"), 400, "unknown TASK 'nope'; allowed: amazon_polarity"),
    Case(
        "an instruction for a model that takes none",
        text(b"x", instruction=b"Given a claim, find documents"),
        400,
        "model 'multilingual-e5-small' takes no free-text instruction (its templates are 'query: {text}' / "
        "'passage: {text}' / 'query: {text}'); send a named TASK, or INSTRUCTION_KIND alone, instead",
    ),
    Case(
        "unknown instruction kind",
        text(b"x", instruction_kind=b"similarity"),
        400,
        "unknown INSTRUCTION_KIND 'similarity'; allowed: retrieval, symmetric",
    ),
    Case(
        "a kind that contradicts the task",
        text(b"x", task=b"sts", instruction_kind=b"retrieval"),
        400,
        "TASK 'sts' is a symmetric task, but INSTRUCTION_KIND is 'retrieval'",
    ),
    Case(
        "unknown truncate mode",
        text(b"x", truncate=b"middle"),
        400,
        "unknown TRUNCATE 'middle'; allowed: end, start, none",
    ),
    Case(
        "different truncate modes in one request",
        [("TEXT", "BYTES", column([b"a", b"b"])), ("TRUNCATE", "BYTES", column([b"end", b"start"]))],
        400,
        "TRUNCATE must be the same for every text of a request",
    ),
    # Refusals by Triton itself, before any model runs (its own messages).
    Case(
        "INT32 TEXT",
        [("TEXT", "INT32", np.array([[1]], dtype=np.int32))],
        400,
        "inference input 'TEXT' data-type is 'INT32', but model 'multilingual-e5-small' expects 'BYTES'",
    ),
    Case(
        "TEXT of shape [1, 2]",
        [("TEXT", "BYTES", np.array([[b"a", b"b"]], dtype=object))],
        400,
        "unexpected shape for input 'TEXT' for model 'multilingual-e5-small'. Expected [-1,1], got [1,2]",
    ),
    Case(
        "an empty batch [0, 1]",
        [("TEXT", "BYTES", np.zeros((0, 1), dtype=object))],
        400,
        "expected 1 string elements for inference input 'TEXT' for model 'multilingual-e5-small', got 0",
    ),
    Case(
        "a batch above max_batch_size",
        text(*[b"x"] * 65),
        400,
        "inference request batch-size must be <= 64 for 'multilingual-e5-small'",
    ),
    Case(
        "ROLE rows that do not match TEXT rows",
        [("TEXT", "BYTES", column([b"a", b"b"])), ("ROLE", "BYTES", column([b"query"]))],
        400,
        "input 'TEXT' batch size does not match other inputs for 'multilingual-e5-small'",
    ),
    Case("an input the model does not have", text(b"x", foo=b"y"), 400, "unexpected inference input 'FOO'"),
    Case(
        "no TEXT at all (Triton's ensemble does not name it)",
        [("ROLE", "BYTES", column([b"query"]))],
        400,
        "unexpected deadlock, at least one output is not set while no more ensemble steps can be made",
    ),
    Case(
        "unknown model",
        text(b"x"),
        404,
        "Request for unknown model: 'no-such-model' is not found",
        model="no-such-model",
    ),
]


def named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def send(protocol: str, url: str, case: Case) -> tuple[np.ndarray, np.ndarray]:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(url)
    try:
        inputs = []
        for name, datatype, data in case.inputs:
            tensor = module.InferInput(name, list(data.shape), datatype)
            tensor.set_data_from_numpy(data)
            inputs.append(tensor)
        result = client.infer(case.model, inputs)
        return result.as_numpy("EMBEDDING"), result.as_numpy("TOKEN_COUNT")
    finally:
        client.close()


@pytest.fixture(scope="module", params=["http", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def url_of(server: Any, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_gets_its_documented_outcome(triton_server: Any, protocol: str, case: Case) -> None:
    url = url_of(triton_server, protocol)
    if case.status is None:
        started = time.monotonic()
        vectors, counts = send(protocol, url, case)
        assert vectors.shape == (1, 384) and np.isfinite(vectors).all()
        assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5
        if case.tokens is not None:
            assert int(counts[0, 0]) == case.tokens
        assert time.monotonic() - started < 10  # a 1 MB text is windowed before it is tokenised
        return
    with pytest.raises(InferenceServerException) as raised:
        send(protocol, url, case)
    assert str(raised.value.status()) == STATUS[protocol][case.status]
    assert case.message in str(raised.value.message())


def test_empty_and_whitespace_texts_embed_alike(triton_server: Any) -> None:
    """Whitespace is no token: a whitespace-only document is the empty document, the template alone."""
    empty, _ = send("grpc", triton_server.grpc_url, named("empty string"))
    blank, _ = send("grpc", triton_server.grpc_url, named("whitespace only"))
    assert cosine(empty[0], blank[0]) > 0.99999


def test_nul_bytes_and_combining_marks_are_kept_as_the_tokenizer_sees_them(triton_server: Any) -> None:
    """No normalisation beyond the model's own tokenizer: a NUL is a token, e + U+0301 is not é for this model."""
    with EmbedClient(triton_server.grpc_url, "grpc") as client:
        vectors, counts = client.encode_with_counts(E5, ["ab", "ab\x00\x00", "été", "e\u0301te\u0301"])
    assert counts.tolist()[:2] == [5, 6]  # the trailing NULs survive the transport and count as one token
    assert cosine(vectors[0], vectors[1]) < 0.99999
    assert cosine(vectors[2], vectors[3]) < 0.99999


@pytest.fixture(scope="module")
def gateway(triton_server: Any) -> Iterator[str]:
    with running_gateway(triton_server.grpc_url, max_request_bytes=2 * 1024 * 1024) as url:
        yield url


def post(gateway: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{gateway}/v1/embeddings", data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


GATEWAY_CASES = [
    # (name, body, status, param, message fragment or usage tokens)
    ("empty string", {"input": ""}, 200, None, 5),
    ("whitespace only", {"input": " \t\n "}, 200, None, 5),
    ("1 MB text", {"input": MEGABYTE_TEXT}, 200, None, 512),
    ("1 MB text, truncate START", {"input": MEGABYTE_TEXT, "truncate": "START"}, 200, None, 512),
    ("NUL, emoji, right-to-left, combining", {"input": ["a\u0000b", "👍🏽", "שלום", "e\u0301"]}, 200, None, None),
    ("a batch above max_batch_size (split by the SDK)", {"input": ["x"] * 100}, 200, None, 500),
    ("1 MB text, truncate NONE", {"input": MEGABYTE_TEXT, "truncate": "NONE"}, 400, "truncate", "model's limit of 512"),
    ("a lone surrogate", {"input": "\ud800"}, 400, "input", "text 0 is not valid UTF-8"),
    ("an empty batch", {"input": []}, 400, "input", "input is empty"),
    ("more texts than the gateway takes", {"input": ["x"] * 2049}, 400, "input", "at most 2048 allowed"),
    ("token ids instead of text", {"input": [1, 2, 3]}, 400, "input", "must be a string or a list of strings"),
    ("unknown input_type", {"input": "x", "input_type": "question"}, 400, "input_type", "allowed: query, passage"),
    ("an unknown task", {"input": "x", "task": "nope"}, 400, "task", "unknown TASK 'nope'"),
    (
        "an instruction for a model that takes none",
        {"input": "x", "instruction": "Find it"},
        400,
        "instruction",
        "takes no free-text instruction",
    ),
    ("unknown truncate", {"input": "x", "truncate": "MIDDLE"}, 400, "truncate", "allowed: END, START, NONE"),
    ("unknown model", {"model": "no-such-model", "input": "x"}, 404, "model", "no-such-model"),
    ("a body over the size limit", {"input": "x" * (3 * 1024 * 1024)}, 413, None, "exceeds the limit"),
]


@pytest.mark.parametrize(
    ("name", "body", "status", "param", "expected"), GATEWAY_CASES, ids=[c[0] for c in GATEWAY_CASES]
)
def test_each_bad_input_through_the_gateway(
    gateway: str, name: str, body: dict[str, Any], status: int, param: str | None, expected: Any
) -> None:
    code, answer = post(gateway, json.dumps({"model": E5, **body}).encode())
    assert code == status, answer
    if status == 200:
        assert all(len(d["embedding"]) == 384 for d in answer["data"])
        if expected is not None:
            assert answer["usage"]["prompt_tokens"] == expected
        return
    assert answer["error"]["param"] == param and expected in answer["error"]["message"], answer


def test_gateway_refuses_invalid_utf8_json_and_chunked_bodies(gateway: str) -> None:
    code, answer = post(gateway, b'{"model": "multilingual-e5-small", "input": "ok \xff\xfe"}')
    assert code == 400 and answer["error"]["message"] == "invalid request: There was an error parsing the body"
    # Headers only: the gateway answers before reading a chunked body (so the test never races its own upload).
    host, port = gateway.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", "/v1/embeddings")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]["message"]
    finally:
        connection.close()


def test_good_requests_alongside_bad_ones_keep_their_vectors(triton_server: Any) -> None:
    """Bad inputs, sent while good requests run, change no good vector; the golden query still comes back."""
    references = golden()
    stop = threading.Event()
    results: list[tuple[int, np.ndarray]] = []
    failures: list[BaseException] = []

    def good(protocol: str) -> None:
        try:
            with EmbedClient(url_of(triton_server, protocol), protocol) as client:
                while not stop.is_set():
                    for index, ref in enumerate(references):
                        results.append((index, client.encode(E5, [ref.text], role=ref.role)[0]))
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    workers = [threading.Thread(target=good, args=(p,)) for p in ("http", "grpc", "grpc")]
    for worker in workers:
        worker.start()
    try:
        for case in CASES:
            for protocol in ("http", "grpc"):
                with contextlib.suppress(InferenceServerException):
                    send(protocol, url_of(triton_server, protocol), case)
        with EmbedClient(triton_server.grpc_url, "grpc") as client, pytest.raises(InvalidRequest):
            client.encode(E5, ["x"], role="bogus")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=120)
    assert not failures, failures
    assert len(results) >= len(references)
    for index, vector in results:
        assert cosine(vector, references[index].vector) >= 0.9999, references[index].text
    with EmbedClient(triton_server.http_url, "http") as client:
        query = client.encode(E5, [references[0].text], role="query")[0]
    assert cosine(query, references[0].vector) >= 0.9999


def test_a_failing_request_does_not_fail_the_others_in_its_batch(triton_server: Any) -> None:
    """Requests the dynamic batcher groups with a bad one still get their vectors (per-request errors)."""
    references = golden()
    outcomes: dict[int, Any] = {}

    def one(index: int, call: Callable[[], Any]) -> None:
        try:
            outcomes[index] = call()
        except InferenceServerException as error:
            outcomes[index] = error

    calls: list[Callable[[], Any]] = []
    for i in range(12):
        if i % 3 == 0:
            calls.append(lambda: send("grpc", triton_server.grpc_url, named("invalid UTF-8")))  # invalid UTF-8
        else:
            ref = references[i % len(references)]
            calls.append(
                lambda ref=ref: send(
                    "grpc",
                    triton_server.grpc_url,
                    Case("good", text(ref.text.encode(), role=ref.role.encode())),
                )
            )
    threads = [threading.Thread(target=one, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for i in range(12):
        if i % 3 == 0:
            assert isinstance(outcomes[i], InferenceServerException)
        else:
            assert cosine(outcomes[i][0][0], references[i % len(references)].vector) >= 0.9999


def test_an_oversized_body_always_gets_its_413_never_a_connection_reset(gateway: str) -> None:
    # Answering before reading the body made the kernel reset about one connection in four while the client was
    # still sending, so the client saw "connection reset" instead of the 413.
    body = json.dumps({"model": E5, "input": "x" * (3 * 1024 * 1024)}).encode()
    codes = [post(gateway, body)[0] for _ in range(20)]
    assert codes == [413] * 20
