"""The SDK's per-request shortcuts change nothing a request carries or an answer holds: shared constant columns and
requested outputs serialise to the same request as freshly made ones, and one text's answer is a fresh, writable
array with the server's values."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2
from tritonclient.grpc._infer_result import InferResult
from tritonclient.grpc._utils import _get_inference_request

from instruct_embed.client import AsyncEmbedClient
from instruct_embed.client.request import (
    EncodeRequest,
    ServedModel,
    _column,
    _make_constant_column,
    build_inputs,
    requested_outputs,
)


def serialised(inputs: list[Any], outputs: list[Any]) -> bytes:
    request = _get_inference_request(
        model_name="m", inputs=inputs, model_version="", request_id="", outputs=outputs, sequence_id=0,
        sequence_start=False, sequence_end=False, priority=1, timeout=None, parameters=None,
    )  # fmt: skip
    return bytes(request.SerializeToString())


def fresh_inputs(texts: list[str], request: EncodeRequest) -> list[Any]:
    """build_inputs as it was before the columns were shared: every tensor made anew."""
    n = len(texts)
    inputs = [_column(grpcclient, "TEXT", texts), _make_constant_column(grpcclient, "ROLE", request.role, n, "BYTES")]
    for name, value in (
        ("TASK", request.task),
        ("INSTRUCTION", request.instruction),
        ("INSTRUCTION_KIND", request.instruction_kind),
        ("TRUNCATE", None if request.truncate == "end" else request.truncate),
        ("CHUNK", request.chunk),
    ):
        if value:
            inputs.append(_make_constant_column(grpcclient, name, value, n, "BYTES"))
    for name, number in (("DIMENSIONS", request.dimensions), ("CHUNK_OVERLAP", request.chunk_overlap)):
        if number is not None:
            inputs.append(_make_constant_column(grpcclient, name, number, n, "INT32"))
    return inputs


@pytest.mark.parametrize(
    "options",
    [
        {"role": "query"},
        {"task": "sts", "instruction_kind": "symmetric", "truncate": "start", "dimensions": 128},
        {"instruction": "caf\u00e9 search", "chunk": "windows", "chunk_overlap": 8, "output_type": "int8"},
    ],
)
@pytest.mark.parametrize("texts", [["one"], ["a", "bb", "ccc"]])
def test_shared_columns_serialise_as_fresh_ones(options: dict[str, Any], texts: list[str]) -> None:
    request = EncodeRequest.make(**options)
    for _ in range(2):  # the second time from the caches
        inputs = build_inputs(grpcclient, texts, request)
        outputs = requested_outputs(grpcclient, request)
        names = [request.output, "TOKEN_COUNT"] + (
            ["CHUNK_TEXT", "CHUNK_TOKENS", "CHUNK_CHARS"] if request.chunk == "windows" else []
        )
        expected_outputs = [grpcclient.InferRequestedOutput(name) for name in names]
        assert serialised(inputs, outputs) == serialised(fresh_inputs(texts, request), expected_outputs)
    assert build_inputs(grpcclient, texts, request)[1] is build_inputs(grpcclient, texts, request)[1]


def test_an_unhashable_constant_is_made_afresh() -> None:
    a = _make_constant_column(grpcclient, "DIMENSIONS", [4], 1, "INT32")
    request = EncodeRequest.make(dimensions=[4])  # type: ignore[arg-type]
    assert serialised(build_inputs(grpcclient, ["x"], request)[2:], []) == serialised([a], [])


def test_one_text_answers_a_fresh_writable_array() -> None:
    answer = service_pb2.ModelInferResponse()
    for name, datatype, shape in (("EMBEDDING", "FP32", [1, 4]), ("TOKEN_COUNT", "INT32", [1, 1])):
        output = answer.outputs.add()
        output.name, output.datatype = name, datatype
        output.shape.extend(shape)
    answer.raw_output_contents.append(np.arange(4, dtype=np.float32).tobytes())
    answer.raw_output_contents.append(np.array([7], np.int32).tobytes())

    class Connection:
        async def infer(self, *args: Any, **kwargs: Any) -> InferResult:
            return InferResult(answer)

    async def run() -> tuple[np.ndarray, np.ndarray]:
        client = AsyncEmbedClient("127.0.0.1:1", "grpc")
        client._models["m"] = ServedModel("m", 4, 8, "q: {text}", "{text}", {}, None, 16)
        connection = Connection()
        client._client = lambda endpoint: connection  # type: ignore[method-assign]
        return await client.encode_with_counts("m", "hello", role="query")

    vectors, counts = asyncio.run(run())
    assert vectors.tolist() == [[0.0, 1.0, 2.0, 3.0]] and vectors.dtype == np.float32 and vectors.flags.writeable
    assert counts.tolist() == [7] and counts.dtype == np.int32 and counts.flags.writeable
