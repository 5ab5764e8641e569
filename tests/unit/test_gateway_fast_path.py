"""The gateway's fast path for /v1/embeddings (the guard validates the raw JSON body itself and runs the endpoint's
code) answers exactly what FastAPI's route answers: the same status, headers and bytes, and the same call to the
SDK, for valid bodies, bodies that do not validate (FastAPI's own refusals), other content types and bodies that
arrive in pieces."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import numpy as np
import pytest
from fastapi.routing import APIRoute

from instruct_embed.client import InvalidRequest, ModelNotFound
from instruct_embed.gateway.app import GatewaySettings, create_app


class FakeTriton:
    """Stands in for the gateway's AsyncEmbedClient: records each call, answers deterministic vectors."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    async def encode_with_counts(self, model: str, texts: list[str], **options: Any) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append((model, list(texts), sorted(options.items())))
        if model == "missing":
            raise ModelNotFound("model 'missing' is not served: unknown model", "unknown model")
        if model == "bad":
            raise InvalidRequest("DIMENSIONS 7 is not served", "DIMENSIONS 7 is not served")
        kind = {"int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
        dtype = kind.get(str(options.get("output_type")), np.float32)
        vectors = (np.random.default_rng(len(texts)).standard_normal((len(texts), 8)) * 50).astype(dtype)
        return vectors, np.arange(1, len(texts) + 1, dtype=np.int32)


def body(**fields: object) -> bytes:
    return json.dumps({"model": "e5", "input": "x", **fields}).encode()


BODIES = [
    body(),
    body(input=["a", "b", "c"], input_type="query"),
    body(model="e5-passage", input_type="query", encoding_format="base64"),
    body(embedding_type="int8", dimensions=3.0, truncate="START", task="sts", instruction_kind="symmetric"),
    body(user="u", extra={"k": [1, 2]}, chunk="mean", chunk_overlap=4),
    body(input_type="clustering", instruction_kind="retrieval"),
    body(input_type="question"),
    body(truncate="MIDDLE"),
    body(input=[]),
    body(input=5),
    body(input=["a", 5]),
    body(dimensions=0),
    body(dimensions="7"),
    body(instruction_kind=3),
    body(encoding_format="hex"),
    body(model="missing"),
    body(model="bad"),
    json.dumps({"model": "e5"}).encode(),
    json.dumps(["model", "input"]).encode(),
    b"",
    b"{",
    b'{"model": "e5", "input": "x"} trailing',
    b'{"model": "e5", "model": "e6", "input": "x", "input": ["y"]}',
    b'{"model": "e5", "input": "\\ud800"}',
    b'{"model": "e5", "input": "tab\there"}',
    b'\xef\xbb\xbf{"model": "e5", "input": "bom"}',
    '{"model": "e5", "input": "utf16"}'.encode("utf-16"),
    b'{"model": "e5", "input": "bad \xff"}',
    '{"model": "e5", "input": "caf\u00e9"}'.encode(),
    b'{"model": "e5", "input": "x", "extra": ' + b"[" * 300 + b"]" * 300 + b"}",
]
CONTENT_TYPES = [b"application/json", b"application/json; charset=utf-8", b"text/plain", None]


def call(app: Any, payload: bytes, content_type: bytes | None, pieces: int = 1) -> dict[str, object]:
    headers = [(b"host", b"x"), (b"content-length", str(len(payload)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/v1/embeddings", "raw_path": b"/v1/embeddings", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    cuts = [len(payload) * i // pieces for i in range(pieces + 1)]
    messages = [
        {"type": "http.request", "body": payload[a:b], "more_body": i < pieces - 1}
        for i, (a, b) in enumerate(itertools.pairwise(cuts))
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # a client that sent everything and waits
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    (start,) = (m for m in sent if m["type"] == "http.response.start")
    return {
        "status": start["status"],
        "headers": list(start["headers"]),
        "body": b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
        "sdk": list(app.state.triton.calls),
    }


def gateway(fast: bool, api_key: str | None = None) -> Any:
    app = create_app(GatewaySettings(api_key=api_key))
    app.state.triton = FakeTriton()  # the lifespan, which would connect to Triton, does not run
    if not fast:  # the guard without the fast path: every request goes through FastAPI's route
        (guard,) = app.user_middleware
        guard.kwargs["embed"] = None
    return app


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("index", range(len(BODIES)))
def test_the_fast_path_answers_what_the_route_answers(index: int, content_type: bytes | None) -> None:
    payload = BODIES[index]
    for pieces in (1, 3) if len(payload) >= 3 else (1,):
        assert call(gateway(True), payload, content_type, pieces) == call(gateway(False), payload, content_type, pieces)


def test_an_api_key_is_checked_before_the_fast_path() -> None:
    for fast in (True, False):
        app = gateway(fast, api_key="sekrit")
        answer = call(app, BODIES[0], b"application/json")
        assert answer["status"] == 401 and not answer["sdk"]


def test_valid_json_bodies_skip_the_route_and_others_reach_it(monkeypatch: pytest.MonkeyPatch) -> None:
    routed: list[str] = []
    handle = APIRoute.handle

    async def counting(self: APIRoute, scope: Any, receive: Any, send: Any) -> None:
        routed.append(self.path)
        await handle(self, scope, receive, send)

    monkeypatch.setattr(APIRoute, "handle", counting)
    assert call(gateway(True), BODIES[0], b"application/json")["status"] == 200
    assert call(gateway(True), BODIES[6], b"application/json")["status"] == 400  # validates; the endpoint refuses
    assert routed == []
    assert call(gateway(True), BODIES[9], b"application/json")["status"] == 400  # does not validate: FastAPI says why
    assert call(gateway(True), BODIES[0], None)["status"] == 400  # no content type: FastAPI refuses it
    assert routed == ["/v1/embeddings", "/v1/embeddings"]
