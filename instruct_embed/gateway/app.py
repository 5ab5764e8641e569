"""The gateway app: `/v1/embeddings`, `/v1/models`, `/health/live`, `/health/ready`. It holds no model."""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from instruct_embed.client import AsyncEmbedClient, EmbedError, InvalidRequest, ModelNotFound, ServerUnavailable

from .errors import GatewayError
from .schemas import (
    INPUT_TYPES,
    MODEL_SUFFIXES,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
    Usage,
)

TRUNCATE = {"end": "end", "start": "start", "none": "none"}
T = TypeVar("T")


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


def encode_vector(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.triton = AsyncEmbedClient(settings.triton_grpc_url, "grpc")
        try:
            yield
        finally:
            await app.state.triton.close()

    app = FastAPI(title="instruct-embed gateway", lifespan=lifespan)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, error: GatewayError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return GatewayError(400, f"invalid request: {first.get('msg', 'malformed body')}", param).response()

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if settings.api_key and request.url.path.startswith("/v1/"):
            supplied = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            # Constant-time comparison: response timing must not reveal how much of a guessed key matched.
            if not hmac.compare_digest(supplied.encode(), settings.api_key.encode()):
                return GatewayError(401, "missing or invalid API key", code="invalid_api_key").response()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_request_bytes:
            return GatewayError(
                413, f"request body of {length} bytes exceeds the limit of {settings.max_request_bytes}"
            ).response()
        return await call_next(request)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready(request: Request) -> Response:
        if await request.app.state.triton.is_ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "triton not ready"}, status_code=503)

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
                    tasks=sorted(m.tasks),
                )
                for m in served
            ]
        )

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest, request: Request) -> EmbeddingResponse:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts:
            raise GatewayError(400, "input is empty; send a string or a non-empty list of strings", "input")
        if len(texts) > settings.max_inputs:
            raise GatewayError(400, f"input has {len(texts)} texts; at most {settings.max_inputs} allowed", "input")
        model, role = resolve_model_and_role(body.model, body.input_type)
        truncate = TRUNCATE.get((body.truncate or "end").lower())
        if truncate is None:
            raise GatewayError(400, f"unknown truncate {body.truncate!r}; allowed: END, START, NONE", "truncate")
        triton: AsyncEmbedClient = request.app.state.triton
        vectors, counts = await _triton_call(triton.encode_with_counts(model, texts, role=role, truncate=truncate))
        if body.dimensions is not None:
            served = await _triton_call(triton.model(model))
            from instruct_embed.client.batching import truncate_dimensions

            try:
                vectors = truncate_dimensions(vectors, body.dimensions, served.matryoshka_dims, served.dim)
            except ValueError as error:
                raise GatewayError(400, str(error), "dimensions") from None
        tokens = int(counts.sum())
        return EmbeddingResponse(
            data=[
                EmbeddingData(index=i, embedding=encode_vector(v, body.encoding_format)) for i, v in enumerate(vectors)
            ],
            model=body.model,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    return app


async def _triton_call(awaitable: Awaitable[T]) -> T:
    """Await a client call, mapping its typed errors to OpenAI-shaped HTTP errors."""
    try:
        return await awaitable
    except ModelNotFound as error:
        raise GatewayError(404, str(error), "model", "model_not_found") from None
    except InvalidRequest as error:
        raise GatewayError(400, error.server_message or str(error), "input") from None
    except ServerUnavailable as error:
        raise GatewayError(503, str(error)) from None
    except EmbedError as error:
        raise GatewayError(400, str(error)) from None
