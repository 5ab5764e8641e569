"""The spine end to end: a real tritonserver returns the reference vectors, with the card's template applied."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from transformers import AutoTokenizer

from instruct_embed.catalog import get_spec
from instruct_embed.client import EmbedClient, InvalidRequest, ModelNotFound
from instruct_embed.export.reference import ReferenceEmbedder
from instruct_embed.export.validate import cosine_rows
from instruct_embed.runtime.contract import PREPROCESS, step_name

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"
MINILM = "all-MiniLM-L6-v2"

QUERIES = [
    "how much protein should a female eat",
    "summit define",
    "¿Cuál es la capital de Francia?",
    "东京有多少人口",
    "what causes the northern lights and where can they be seen best during the winter months",
]
DOCUMENTS = [
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day.",
    "Definition of summit for English Language Learners: the highest point of a mountain.",
    "Paris est la capitale de la France.",
    "Aurorae are caused by charged particles from the sun. " * 40,  # > 512 tokens: truncated at the end
    "x",
]


def mixed_texts(n: int) -> list[str]:
    pool = QUERIES + DOCUMENTS
    return [f"{pool[i % len(pool)]} ({i})" if i >= len(pool) else pool[i] for i in range(n)]


@pytest.fixture(scope="module")
def e5_reference(prepared_models: dict[str, Any]) -> ReferenceEmbedder:
    return ReferenceEmbedder(get_spec(E5), prepared_models[E5].hf_dir)


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request: pytest.FixtureRequest, triton_server: Any) -> Any:
    url = triton_server.http_url if request.param == "http" else triton_server.grpc_url
    with EmbedClient(url, request.param) as embed_client:
        yield embed_client


def raw_request(module: Any, url: str, model: str, texts: list[str], role: str | None = None) -> np.ndarray:
    """A plain tritonclient request, no SDK in between."""
    client = module.InferenceServerClient(url)
    try:
        inputs = []
        for name, values in (("TEXT", texts), ("ROLE", [role] * len(texts) if role else None)):
            if values is None:
                continue
            tensor = module.InferInput(name, [len(values), 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[v.encode()] for v in values], dtype=object))
            inputs.append(tensor)
        return client.infer(model, inputs).as_numpy("EMBEDDING")
    finally:
        client.close()


@pytest.mark.parametrize("module", [httpclient, grpcclient], ids=["http", "grpc"])
def test_raw_request_returns_a_384_d_unit_vector(triton_server: Any, module: Any) -> None:
    url = triton_server.http_url if module is httpclient else triton_server.grpc_url
    vectors = raw_request(module, url, E5, ["hello world"], role="query")
    assert vectors.shape == (1, 384) and vectors.dtype == np.float32
    assert abs(float(np.linalg.norm(vectors[0])) - 1.0) < 1e-5


@pytest.mark.parametrize("batch_size", [1, 7, 32])
@pytest.mark.parametrize("role", ["query", "document"])
def test_server_equals_the_pytorch_reference(
    client: EmbedClient, e5_reference: ReferenceEmbedder, batch_size: int, role: str
) -> None:
    texts = mixed_texts(batch_size)
    served = client.encode(E5, texts, role=role)
    prefix = "query: " if role == "query" else "passage: "
    reference = e5_reference.embed([prefix + t for t in texts])
    assert served.shape == (batch_size, 384)
    assert float(cosine_rows(served, reference).min()) >= 0.9999


def test_a_batch_gives_the_same_vectors_as_single_requests(client: EmbedClient) -> None:
    texts = mixed_texts(7)
    batch = client.encode(E5, texts, is_query=True)
    singles = np.concatenate([client.encode(E5, [t], is_query=True) for t in texts])
    assert float(cosine_rows(batch, singles).min()) >= 0.99999


def test_query_role_applies_the_card_prefix_on_token_ids(triton_server: Any, prepared_models: dict[str, Any]) -> None:
    """Ask the preprocess step itself (it is a served model) for the ids it feeds the encoder."""
    tokenizer = AutoTokenizer.from_pretrained(prepared_models[E5].hf_dir)
    client = httpclient.InferenceServerClient(triton_server.http_url)
    try:
        for role, prefix in (("query", "query: "), ("document", "passage: ")):
            inputs = []
            for name, value in (("TEXT", "how tall is mont blanc"), ("ROLE", role)):
                tensor = httpclient.InferInput(name, [1, 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
                inputs.append(tensor)
            result = client.infer(step_name(E5, PREPROCESS), inputs)
            ids = result.as_numpy("input_ids")[0].tolist()
            assert ids == tokenizer(prefix + "how tall is mont blanc")["input_ids"]
            assert result.as_numpy("TOKEN_COUNT")[0, 0] == len(ids)
    finally:
        client.close()


def test_query_and_document_vectors_differ_by_the_prefix(client: EmbedClient, e5_reference: ReferenceEmbedder) -> None:
    text = "how tall is mont blanc"
    query, document = client.encode(E5, [text], is_query=True), client.encode(E5, [text])
    assert float(cosine_rows(query, document)[0]) < 0.999
    assert float(cosine_rows(query, e5_reference.embed(["query: " + text]))[0]) >= 0.9999
    assert float(cosine_rows(document, e5_reference.embed(["passage: " + text]))[0]) >= 0.9999


def test_a_template_written_by_the_caller_is_not_doubled(client: EmbedClient) -> None:
    written = client.encode(E5, ["query: how tall is mont blanc"])  # default role: document
    applied = client.encode(E5, ["how tall is mont blanc"], is_query=True)
    raw = client.encode(E5, ["query: how tall is mont blanc"], role="raw")
    assert float(cosine_rows(written, applied)[0]) >= 0.99999
    assert float(cosine_rows(raw, applied)[0]) >= 0.99999


def test_minilm_through_the_server_equals_sentence_transformers(
    client: EmbedClient, prepared_models: dict[str, Any]
) -> None:
    from sentence_transformers import SentenceTransformer

    texts = mixed_texts(12)
    model = SentenceTransformer(str(prepared_models[MINILM].hf_dir), device="cpu")
    expected = model.encode(texts, normalize_embeddings=True)
    served = client.encode(MINILM, texts)
    assert float(cosine_rows(served, expected).min()) >= 0.9999


def test_unknown_role_is_an_error_that_lists_the_valid_ones(client: EmbedClient) -> None:
    with pytest.raises(InvalidRequest, match="unknown ROLE 'passage'; allowed: query, document, raw"):
        client.encode(E5, ["x"], role="passage")


def test_instruction_for_a_model_without_a_task_slot_is_refused(client: EmbedClient) -> None:
    with pytest.raises(InvalidRequest, match="takes no free-text instruction"):
        client.encode(E5, ["x"], is_query=True, instruction="Given a claim, find documents")


def test_unknown_model_raises_model_not_found(client: EmbedClient) -> None:
    with pytest.raises(ModelNotFound):
        client.encode("no-such-model", ["x"])


def test_models_are_described_by_the_server(client: EmbedClient) -> None:
    served = {m.name: m for m in client.models()}
    assert {E5, MINILM} <= set(served)
    assert served[E5].query_template == "query: {text}" and served[E5].dim == 384


def test_the_server_keeps_serving_after_errors(client: EmbedClient, e5_reference: ReferenceEmbedder) -> None:
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            client.encode(E5, ["x"], role="bogus")
    vector = client.encode(E5, ["how tall is mont blanc"], is_query=True)
    assert float(cosine_rows(vector, e5_reference.embed(["query: how tall is mont blanc"]))[0]) >= 0.9999
