"""The gateway app: `/v1/embeddings`, `/v1/models`, `/health/live`, `/health/ready`. It holds no model."""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pydantic_core
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from instruct_embed.client import (
    AsyncEmbedClient,
    EmbedError,
    InvalidRequest,
    ModelNotFound,
    ServerError,
    ServerUnavailable,
)
from instruct_embed.runtime.contract import DEFAULT_TRUNCATE, INSTRUCTION_KINDS, TRUNCATE_MODES

from .errors import GatewayError
from .schemas import (
    INPUT_TYPE_KINDS,
    INPUT_TYPES,
    MODEL_SUFFIXES,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
)

T = TypeVar("T")
# An oversized body up to this many times the limit is read and dropped before the 413 goes out: answering and
# closing with unread bytes makes the kernel reset the connection, and a client still sending its body then sees
# "connection reset" instead of the 413. Larger bodies are refused at once (reading them would cost too much).
DRAIN_FACTOR = 4
EMBEDDINGS_PATH = "/v1/embeddings"


@dataclass(frozen=True)
class GatewaySettings:
    triton_grpc_url: str = "127.0.0.1:8001"
    api_key: str | None = None  # when set, requests need "Authorization: Bearer <key>"
    max_request_bytes: int = 8 * 1024 * 1024
    max_inputs: int = 2048  # OpenAI's own limit on texts per request


def resolve_model_and_role(model: str, input_type: str | None) -> tuple[str, str]:
    """Model name and ensemble ROLE; `input_type` wins over a `-query` / `-passage` suffix."""
    role = None
    for suffix, suffix_role in MODEL_SUFFIXES.items():
        if model.endswith(suffix):
            model, role = model[: -len(suffix)], suffix_role
            break
    if input_type is not None:
        if input_type not in INPUT_TYPES:
            raise GatewayError(
                400, f"unknown input_type {input_type!r}; allowed: {', '.join(INPUT_TYPES)}", "input_type"
            )
        role = INPUT_TYPES[input_type]
    return model, role or "document"


def resolve_instruction_kind(input_type: str | None, instruction_kind: str | None) -> str | None:
    """The ensemble's INSTRUCTION_KIND (None: unset, the task decides): `instruction_kind`, or the one an
    `input_type` of classification / clustering means (symmetric); the two must agree when both are sent."""
    if instruction_kind is not None and instruction_kind not in INSTRUCTION_KINDS:
        raise GatewayError(
            400,
            f"unknown instruction_kind {instruction_kind!r}; allowed: {', '.join(INSTRUCTION_KINDS)}",
            "instruction_kind",
        )
    implied = INPUT_TYPE_KINDS.get(input_type or "")
    if implied is not None and instruction_kind is not None and instruction_kind != implied:
        raise GatewayError(
            400,
            f"input_type {input_type!r} means instruction_kind {implied!r}, but instruction_kind is "
            f"{instruction_kind!r}; send either, or both agreeing",
            "instruction_kind",
        )
    return instruction_kind or implied


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | list[int] | str:
    """A vector as JSON: numbers, or base64 of its bytes (float32 little-endian; int8 / uint8 one byte each)."""
    if encoding_format == "base64":
        data = vector.astype("<f4") if vector.dtype.kind == "f" else vector
        return base64.b64encode(np.ascontiguousarray(data).tobytes()).decode("ascii")
    return vector.tolist()  # Python floats (each float32 exactly) or ints: what float(x) / int(x) gave, at C speed


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.triton = AsyncEmbedClient(settings.triton_grpc_url, "grpc")
        # Readiness answers at once: no retries, so a dead model process shows in one probe.
        app.state.probe = AsyncEmbedClient(settings.triton_grpc_url, "grpc", retries=0)
        try:
            yield
        finally:
            await app.state.triton.close()
            await app.state.probe.close()

    app = FastAPI(title="instruct-embed gateway", lifespan=lifespan)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        location = [str(p) for p in first.get("loc", ())[1:]]
        param = location[0] if location else None
        message = f"invalid request: {first.get('msg', 'malformed body')}"
        if param == "input":  # a union's first error speaks of strings only: say what is allowed
            message = f"invalid request: input must be a string or a list of strings ({first.get('msg', '')})"
        return GatewayError(400, message, param).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, an unknown path) in the same OpenAI shape.
        prefix = "invalid request: " if error.status_code == 400 else ""
        return GatewayError(error.status_code, f"{prefix}{error.detail}").response()

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready(request: Request) -> Response:
        """Ready when Triton is and every served model embeds a probe text.

        Triton's own readiness stays true when a model's Python process has died; the probe does not.
        """
        probe: AsyncEmbedClient = request.app.state.probe
        if not await probe.is_ready():
            return JSONResponse({"status": "triton not ready"}, status_code=503)
        failing = {}
        try:
            for served in await probe.models():
                try:
                    await probe.encode(served.name, ["ready?"], role="raw")
                except EmbedError as error:
                    failing[served.name] = error.server_message or str(error)
        except EmbedError as error:
            return JSONResponse({"status": "triton not ready", "error": str(error)}, status_code=503)
        if failing:
            return JSONResponse({"status": "models failing", "models": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/v1/models")
    async def models(request: Request) -> ModelList:
        served = await _triton_call(request.app.state.triton.models())
        return ModelList(
            data=[
                ModelCard(
                    id=m.name,
                    dimensions=m.dim,
                    query_template=m.query_template,
                    document_template=m.document_template,
                    symmetric_template=m.symmetric_template,
                    tasks=sorted(m.tasks),
                    task_kinds={name: m.task_kinds[name] for name in sorted(m.tasks)},
                    embedding_types=list(m.embedding_types),
                )
                for m in served
            ]
        )

    async def embed(body: EmbeddingRequest, triton: AsyncEmbedClient) -> Response:
        """The endpoint's work on a validated body: FastAPI's route and the guard's fast path both run it."""
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts:
            raise GatewayError(400, "input is empty; send a string or a non-empty list of strings", "input")
        if len(texts) > settings.max_inputs:
            raise GatewayError(400, f"input has {len(texts)} texts; at most {settings.max_inputs} allowed", "input")
        model, role = resolve_model_and_role(body.model, body.input_type)
        kind = resolve_instruction_kind(body.input_type, body.instruction_kind)
        truncate = (body.truncate or DEFAULT_TRUNCATE).lower()  # NIM and Cohere spell the modes in upper case
        if truncate not in TRUNCATE_MODES:
            allowed = ", ".join(m.upper() for m in TRUNCATE_MODES)
            raise GatewayError(400, f"unknown truncate {body.truncate!r}; allowed: {allowed}", "truncate")
        options = {
            "role": role,
            "task": body.task,
            "instruction": body.instruction,
            "instruction_kind": kind,
            "truncate": truncate,
            "dimensions": body.dimensions,
            "output_type": body.embedding_type,
            "chunk_overlap": body.chunk_overlap,
        }
        if body.chunk == "windows":
            windows = await _triton_call(triton.encode_windows(model, texts, **options))
            data = [
                _entry(i, encode_vector(w.vectors[k], body.encoding_format), w.tokens[k].tolist(), w.chars[k].tolist())
                for i, w in enumerate(windows)
                for k in range(len(w))
            ]
            tokens = sum(int(w.token_counts.sum()) for w in windows)
        else:
            vectors, counts = await _triton_call(triton.encode_with_counts(model, texts, chunk=body.chunk, **options))
            data = [_entry(i, encode_vector(v, body.encoding_format)) for i, v in enumerate(vectors)]
            tokens = int(counts.sum())
        return embedding_response(data, body.model, tokens)

    @app.post(EMBEDDINGS_PATH, response_model=EmbeddingResponse)
    async def embeddings(body: EmbeddingRequest, request: Request) -> Response:
        return await embed(body, request.app.state.triton)

    app.add_middleware(_Guard, settings=settings, embed=embed)
    return app


def _entry(
    index: int,
    embedding: list[float] | list[int] | str,
    tokens: list[int] | None = None,
    chars: list[int] | None = None,
) -> dict[str, object]:
    """One EmbeddingData as JSON-ready values, its fields in the model's order."""
    return {"object": "embedding", "index": index, "embedding": embedding, "tokens": tokens, "chars": chars}


def embedding_response(data: list[dict[str, object]], model: str, tokens: int) -> Response:
    """The EmbeddingResponse body, byte for byte what FastAPI writes for the model (pydantic-core's JSON, fields in
    order, None as null), without validating again the values the endpoint made: building and validating the
    models, then serialising them, cost more than the rest of the request (benchmarks/README.md, "Gateway")."""
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return Response(pydantic_core.to_json(body), media_type="application/json")


Embed = Callable[[EmbeddingRequest, AsyncEmbedClient], Awaitable[Response]]


class _Guard:
    """The API key, the Content-Length rules and the size limit, before the app reads a body. A plain ASGI
    middleware: Starlette's BaseHTTPMiddleware (`@app.middleware`) runs every request in a task group through
    memory streams, which cost more CPU per request than the checks themselves.

    It also answers the common `/v1/embeddings` request itself (a JSON body that validates): pydantic reads the
    raw body in one pass (`model_validate_json`) and the endpoint's own code (`embed`) runs, without FastAPI's
    routing, JSON decoding into a dict and dependency solving, which cost a quarter of the gateway's CPU per
    request. Any body that does not validate goes on to FastAPI unchanged (the body replayed), so every refusal
    is FastAPI's own, byte for byte; a body that validates here validates there to the same values."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings, embed: Embed | None = None) -> None:
        self.app = app
        self.settings = settings
        self.embed = embed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = await self.refusal(Request(scope, receive))
        if refusal is not None:
            await refusal(scope, receive, send)
        elif (
            self.embed is not None
            and scope["method"] == "POST"
            and scope["path"] == EMBEDDINGS_PATH
            and not scope.get("root_path")
            and _is_json(scope["headers"])
        ):
            await self.embeddings(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST /v1/embeddings: answered here when the body validates, else by FastAPI's route."""
        assert self.embed is not None
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = _replaying(messages, receive)
        if messages[-1]["type"] == "http.request":
            body = b"".join(m.get("body", b"") for m in messages) if len(messages) > 1 else messages[0].get("body", b"")
            try:
                request = EmbeddingRequest.model_validate_json(body) if body else None
            except ValidationError:
                request = None  # FastAPI's route says why, in its own words
            if request is not None:
                try:
                    response = await self.embed(request, scope["app"].state.triton)
                except GatewayError as error:
                    response = error.response()
                await response(scope, replay, send)
                return
        await self.app(scope, replay, send)

    async def refusal(self, request: Request) -> Response | None:
        settings = self.settings
        if settings.api_key and request.url.path.startswith("/v1/"):
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            # Constant-time comparison: response timing must not reveal how much of a guessed key matched.
            if not hmac.compare_digest(supplied.encode(), settings.api_key.encode()):
                return GatewayError(401, "missing or invalid API key", code="invalid_api_key").response()
        length = request.headers.get("content-length")
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            # A chunked body has no length to check before it is read whole: refuse it instead.
            return GatewayError(
                411, "send the body with a Content-Length header (chunked bodies are refused)"
            ).response()
        if length is not None and length.isdigit() and int(length) > settings.max_request_bytes:
            if int(length) <= DRAIN_FACTOR * settings.max_request_bytes:
                async for _ in request.stream():
                    pass
            refusal = GatewayError(
                413, f"request body of {length} bytes exceeds the limit of {settings.max_request_bytes}"
            ).response()
            refusal.headers["connection"] = "close"
            return refusal
        return None


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the first Content-Type header says application/json (parameters such as a charset aside): the
    bodies FastAPI decodes as JSON that the fast path takes; others (+json types, none) go to FastAPI."""
    for name, value in headers:
        if name == b"content-type":
            return value == b"application/json" or value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out `messages` again, then what `receive` brings."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _triton_call(awaitable: Awaitable[T]) -> T:
    """Await a client call, mapping its typed errors to OpenAI-shaped HTTP errors."""
    try:
        return await awaitable
    except ModelNotFound as error:
        raise GatewayError(404, str(error), "model", "model_not_found") from None
    except InvalidRequest as error:
        message = error.server_message or str(error)
        raise GatewayError(400, message, _param_of(message)) from None
    except ServerUnavailable as error:
        raise GatewayError(503, str(error)) from None
    except ServerError as error:
        raise GatewayError(500, str(error)) from None
    except EmbedError as error:
        raise GatewayError(400, str(error)) from None


# What a server refusal is about, by what its message says (first match wins): the server names its tensors, but
# some messages name several (a kind that contradicts a task, a hint to send a task instead of an instruction).
_PARAMS_BY_MESSAGE = (
    ("DIMENSIONS", "dimensions"),
    ("output_type", "embedding_type"),
    ("CHUNK_OVERLAP", "chunk_overlap"),
    ("CHUNK", "chunk"),
    ("INSTRUCTION_KIND is", "instruction_kind"),  # TASK 'x' is a symmetric task, but INSTRUCTION_KIND is ...
    ("unknown INSTRUCTION_KIND", "instruction_kind"),
    ("free-text instruction", "instruction"),  # a model without a {task} slot refuses INSTRUCTION
    ("a symmetric request", "task"),  # a symmetric request to an instruction model needs a task
    ("TASK", "task"),
    ("INSTRUCTION", "instruction"),
    ("TRUNCATE", "truncate"),
)


def _param_of(message: str) -> str:
    """The request field a server refusal is about."""
    for fragment, param in _PARAMS_BY_MESSAGE:
        if fragment in message:
            return param
    return "input"
