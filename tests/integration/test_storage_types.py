"""The storage types through the real server: int8 / uint8 over the calibrated ranges, binary / ubinary sign bits,
over HTTP, gRPC and the gateway with the official openai client; each row independent of its batch."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest
import tritonclient.http as httpclient

from instruct_embed.client import EmbedClient, InvalidRequest
from instruct_embed.paths import repository_dir
from instruct_embed.runtime.contract import INT8_RANGES_FILE
from instruct_embed.runtime.quantization import Int8Ranges, decode_int8, decode_uint8
from tests.reliability_support import running_gateway

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"
# Mixed lengths and scripts, so a row's batch neighbours pad it differently from when it runs alone.
TEXTS = [
    "how tall is mont blanc",
    "Mont Blanc is 4,806 m high and the highest mountain of the Alps.",
    "x",
    "Le chat est assis sur le tapis.",
    "東京は日本の首都です。",
    " ".join(["Retrieval grounds answers in documents found by their embeddings."] * 30),
    "protein intake for endurance athletes",
    "Quantised vectors trade a little recall for a quarter or a thirty-second of the bytes.",
    "¿Dónde está el Louvre?",
    "1 2 3 4 5 6 7 8 9 10",
    "The court held that the clause was unenforceable.",
]


@pytest.fixture(scope="module")
def ranges(triton_server: Any) -> Int8Ranges:
    loaded = Int8Ranges.read(repository_dir() / f"{E5}_postprocess" / "1" / INT8_RANGES_FILE)
    assert loaded is not None, "prepare calibrates every model it renders"
    return loaded


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request: pytest.FixtureRequest, triton_server: Any) -> Iterator[EmbedClient]:
    url = triton_server.http_url if request.param == "http" else triton_server.grpc_url
    with EmbedClient(url, request.param) as sdk:
        yield sdk


def test_every_type_is_derived_from_the_float_vector(client: EmbedClient, ranges: Int8Ranges) -> None:
    floats = client.encode(E5, TEXTS)
    int8 = client.encode(E5, TEXTS, output_type="int8")
    uint8 = client.encode(E5, TEXTS, output_type="uint8")
    binary = client.encode(E5, TEXTS, output_type="binary")
    ubinary = client.encode(E5, TEXTS, output_type="ubinary")
    assert (int8.dtype, uint8.dtype, binary.dtype, ubinary.dtype) == (np.int8, np.uint8, np.int8, np.uint8)
    assert int8.shape == uint8.shape == (len(TEXTS), 384) and binary.shape == ubinary.shape == (len(TEXTS), 48)
    # The sign bits are the float signs, first component in the highest bit; binary is ubinary offset by -128.
    assert np.array_equal(np.unpackbits(ubinary, axis=1).astype(bool), floats > 0)
    assert np.array_equal(binary.astype(np.int16), ubinary.astype(np.int16) - 128)
    assert np.array_equal(int8.astype(np.int16), uint8.astype(np.int16) - 128)
    # Inside the calibrated range a component decodes to within half a step; outside it, to the range's end.
    low, high, step = ranges.low[384], ranges.high[384], ranges.step(384)
    clipped = np.clip(floats, low, high)
    for decoded in (decode_int8(int8, ranges), decode_uint8(uint8, ranges)):
        assert (np.abs(decoded - clipped) <= step / 2 + 1e-6).all()
    inside = (floats >= low) & (floats <= high)
    assert inside.mean() > 0.97, "the calibration texts cover most components (98.9 % of these when written)"


@pytest.mark.parametrize("output_type", ["int8", "uint8", "binary", "ubinary"])
def test_a_text_gets_the_same_codes_alone_and_in_any_batch(client: EmbedClient, output_type: str) -> None:
    batch = client.encode(E5, TEXTS, output_type=output_type)
    reversed_batch = client.encode(E5, TEXTS[::-1], output_type=output_type)[::-1]
    alone = np.concatenate([client.encode(E5, [t], output_type=output_type) for t in TEXTS])
    assert np.array_equal(batch, alone) and np.array_equal(reversed_batch, alone)


def test_matryoshka_cut_and_storage_types_compose_on_the_kserve_api(triton_server: Any) -> None:
    """A raw KServe request names the outputs it wants; only those come back."""
    client = httpclient.InferenceServerClient(triton_server.http_url)
    try:
        text = httpclient.InferInput("TEXT", [2, 1], "BYTES")
        text.set_data_from_numpy(np.array([[b"a query"], [b"a document"]], dtype=object))
        wanted = [httpclient.InferRequestedOutput("EMBEDDING_UBINARY")]
        result = client.infer(E5, [text], outputs=wanted)
        assert result.as_numpy("EMBEDDING_UBINARY").shape == (2, 48)
        assert result.as_numpy("EMBEDDING") is None, "an output not asked for does not cross the wire"
    finally:
        client.close()


def test_a_storage_type_the_model_lacks_is_refused_by_name(client: EmbedClient) -> None:
    with pytest.raises(InvalidRequest, match="unknown output_type 'int4'; allowed: float, int8, uint8, binary"):
        client.encode(E5, ["x"], output_type="int4")


@pytest.fixture(scope="module")
def openai_client(triton_server: Any) -> Iterator[openai.OpenAI]:
    with running_gateway(triton_server.grpc_url) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("embedding_type", ["float", "int8", "uint8", "binary", "ubinary"])
def test_the_gateway_serves_every_type_to_the_openai_client(
    openai_client: openai.OpenAI, triton_server: Any, embedding_type: str
) -> None:
    with EmbedClient(triton_server.grpc_url, "grpc") as sdk:
        expected = sdk.encode(E5, TEXTS[:3], output_type=embedding_type)
    # encoding_format float: numbers (integers for the integer types).
    listed = openai_client.embeddings.create(
        model=E5, input=TEXTS[:3], encoding_format="float", extra_body={"embedding_type": embedding_type}
    )
    got = np.array([d.embedding for d in sorted(listed.data, key=lambda d: d.index)])
    assert np.allclose(got, expected.astype(np.float64), atol=1e-6)
    # base64: the vector's own bytes (the openai client decodes float32 only, so read the raw answer).
    raw = openai_client.embeddings.with_raw_response.create(
        model=E5, input=TEXTS[:3], encoding_format="base64", extra_body={"embedding_type": embedding_type}
    ).http_response.json()
    decoded = np.stack(
        [
            np.frombuffer(base64.b64decode(d["embedding"]), dtype=expected.dtype.newbyteorder("<"))
            for d in sorted(raw["data"], key=lambda d: d["index"])
        ]
    )
    assert np.array_equal(decoded, expected)


def test_the_gateway_chunks_a_long_text_into_windows_and_means(
    openai_client: openai.OpenAI, triton_server: Any
) -> None:
    long = " ".join(f"Sentence {i} of a long report on glaciers and their meltwater." for i in range(120))
    raw = openai_client.embeddings.with_raw_response.create(
        model=E5, input=[long, "short"], encoding_format="float", extra_body={"chunk": "windows", "chunk_overlap": 16}
    ).http_response.json()
    entries = raw["data"]
    assert [d["index"] for d in entries].count(1) == 1 and entries[0]["index"] == 0 and len(entries) > 2
    assert entries[0]["tokens"][0] == 0 and all(d["chars"][1] > d["chars"][0] for d in entries)
    with EmbedClient(triton_server.grpc_url, "grpc") as sdk:
        windows = sdk.encode_windows(E5, [long, "short"], chunk_overlap=16)
        mean = sdk.encode(E5, [long], chunk="mean", chunk_overlap=16)
    assert np.allclose(np.array([d["embedding"] for d in entries if d["index"] == 0]), windows[0].vectors, atol=1e-6)
    assert raw["usage"]["prompt_tokens"] == sum(int(w.token_counts.sum()) for w in windows)
    averaged = openai_client.embeddings.create(
        model=E5, input=long, encoding_format="float", extra_body={"chunk": "mean", "chunk_overlap": 16}
    )
    assert np.allclose(np.array(averaged.data[0].embedding), mean[0], atol=1e-6)
