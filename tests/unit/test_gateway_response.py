"""The gateway writes its embeddings answer without building pydantic models: the bytes must be those FastAPI
wrote for the EmbeddingResponse model (same fields, same order, same float text, None as null)."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from instruct_embed.gateway.app import _entry, embedding_response, encode_vector
from instruct_embed.gateway.schemas import EmbeddingData, EmbeddingResponse, Usage


def as_model(data: list[dict[str, object]], model: str, tokens: int) -> bytes:
    entries = [EmbeddingData.model_validate(d) for d in data]
    usage = Usage(prompt_tokens=tokens, total_tokens=tokens)
    return EmbeddingResponse(data=entries, model=model, usage=usage).model_dump_json().encode()


def vectors(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype == "float32":
        v = rng.standard_normal((3, 384)).astype(np.float32)
        v[0, :6] = [1e-7, -0.0, 3.0, 1e-5, 123456789.0, np.float32(0.1)]
        return v
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (3, 384)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "int8", "uint8"])
@pytest.mark.parametrize("encoding_format", ["float", "base64"])
def test_the_answer_is_the_models_json_byte_for_byte(dtype: str, encoding_format: str) -> None:
    data = [_entry(i, encode_vector(v, encoding_format)) for i, v in enumerate(vectors(dtype))]
    assert embedding_response(data, "m-query", 17).body == as_model(data, "m-query", 17)


def test_chunk_windows_carry_their_spans_in_the_same_bytes() -> None:
    v = vectors("float32")
    data = [_entry(0, encode_vector(v[0], "float"), [0, 3], [0, 10]), _entry(0, encode_vector(v[1], "float"), [2, 5])]
    assert embedding_response(data, "m", 9).body == as_model(data, "m", 9)


def test_vectors_keep_their_exact_values() -> None:
    v = vectors("float32")[0]
    assert encode_vector(v, "float") == [float(x) for x in v]
    ints = vectors("int8")[0]
    assert encode_vector(ints, "float") == [int(x) for x in ints]
    assert np.array_equal(np.frombuffer(base64.b64decode(encode_vector(v, "base64")), "<f4"), v)  # type: ignore[arg-type]
