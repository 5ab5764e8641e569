"""The SDK against the real server, both protocols: same vectors as raw tritonclient, order, typed errors, async."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from instruct_embed.client import AsyncEmbedClient, EmbedClient, InvalidRequest, ModelNotFound
from instruct_embed.export.validate import cosine_rows
from instruct_embed.runtime.contract import ENCODER, PREPROCESS, step_name

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"


def url_of(server: Any, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


def raw(protocol: str, url: str, texts: list[str], role: str) -> np.ndarray:
    module = httpclient if protocol == "http" else grpcclient
    client = module.InferenceServerClient(url)
    try:
        inputs = []
        for name, values in (("TEXT", texts), ("ROLE", [role] * len(texts))):
            tensor = module.InferInput(name, [len(values), 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[v.encode()] for v in values], dtype=object))
            inputs.append(tensor)
        return client.infer(E5, inputs).as_numpy("EMBEDDING")
    finally:
        client.close()


@pytest.fixture(scope="module", params=["http", "grpc"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_encode_equals_a_raw_tritonclient_request(triton_server: Any, protocol: str) -> None:
    texts = ["how tall is mont blanc", "Mont Blanc is 4,806 m high.", "x"]
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        vectors = client.encode(E5, texts, is_query=True)
    assert np.allclose(vectors, raw(protocol, url_of(triton_server, protocol), texts, "query"), atol=1e-6)


def test_a_thousand_texts_come_back_complete_and_in_order(triton_server: Any, protocol: str) -> None:
    # Distinct lengths and contents, so a swapped row would show.
    texts = [f"document {i}: " + "lorem ipsum " * (i % 37) for i in range(1000)]
    with EmbedClient(url_of(triton_server, protocol), protocol, concurrency=4) as client:
        bulk = client.encode(E5, texts)
        probe = [0, 1, 36, 37, 500, 998, 999]
        singles = np.concatenate([client.encode(E5, [texts[i]]) for i in probe])
    assert bulk.shape == (1000, 384)
    assert float(cosine_rows(bulk[probe], singles).min()) >= 0.99999


def test_async_client_gives_the_same_vectors(triton_server: Any, protocol: str) -> None:
    texts = [f"text {i} " + "word " * i for i in range(150)]
    url = url_of(triton_server, protocol)
    with EmbedClient(url, protocol) as client:
        expected = client.encode(E5, texts, is_query=True)

    async def run() -> np.ndarray:
        async with AsyncEmbedClient(url, protocol) as client:
            return await client.encode_queries(E5, texts)

    assert np.allclose(asyncio.run(run()), expected, atol=1e-6)


def test_typed_errors_carry_the_server_message(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        with pytest.raises(ModelNotFound, match="no-such-model"):
            client.encode("no-such-model", ["x"])
        with pytest.raises(InvalidRequest) as raised:
            client.encode(E5, ["x"], role="passage")
        assert "allowed: query, document, raw" in str(raised.value.server_message)
        with pytest.raises(InvalidRequest, match="takes no free-text instruction"):
            client.encode(E5, ["x"], instruction="Retrieve semantically similar text.")
        with pytest.raises(InvalidRequest, match="allowed: retrieval, symmetric"):
            client.encode(E5, ["x"], instruction_kind="similarity")
        with pytest.raises(InvalidRequest, match=r"DIMENSIONS 100: .* not trained for Matryoshka .* allowed: 384"):
            client.encode(E5, ["x"], dimensions=100)
        assert client.encode(E5, ["x"], dimensions=384).shape == (1, 384), "its full width is always allowed"


def test_models_lists_tasks_templates_and_dimensions_from_the_server(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        served = {m.name: m for m in client.models()}
    assert served[E5].document_template == "passage: {text}"
    assert served[E5].dim == 384 and served[E5].max_batch_size > 0
    assert served[E5].symmetric_template == "query: {text}"
    assert served[E5].task_kinds["sts"] == "symmetric" and served[E5].task_kinds["scifact"] == "retrieval"
    assert set(served[E5].task_kinds) == set(served[E5].tasks)


def test_reload_starts_fresh_processes_and_the_model_keeps_answering(triton_server: Any, protocol: str) -> None:
    """Sync and async reloads on a healthy model: new Python processes for both steps, the same vectors."""
    from instruct_embed.server.stubs import stubs_of

    url = url_of(triton_server, protocol)
    steps = (step_name(E5, PREPROCESS), step_name(E5, ENCODER))

    def processes() -> dict[str, set[int]]:
        found = stubs_of(triton_server.process.pid)
        return {step: {s.pid for s in found if s.model == step} for step in steps}

    async def reload_async() -> None:
        async with AsyncEmbedClient(url, protocol) as client:
            await client.reload(E5)

    with EmbedClient(url, protocol, retries=0) as client:
        before = client.encode(E5, ["a reloaded model answers as before"], is_query=True)
        for reload in (lambda: client.reload(E5), lambda: asyncio.run(reload_async())):
            old = processes()
            reload()
            # Triton swaps the new processes in, then ends the old ones in the background.
            deadline = time.monotonic() + 30
            while True:
                new = processes()
                if all(new[s] and not new[s] & old[s] and len(new[s]) == len(old[s]) for s in steps):
                    break
                assert time.monotonic() < deadline, f"processes before {old}, 30 s after the reload {new}"
                time.sleep(0.2)
            after = client.encode(E5, ["a reloaded model answers as before"], is_query=True)
            assert float(cosine_rows(before, after).min()) >= 0.99999


# -- task kinds: a symmetric task gives every text the symmetric template (e5: "query: "), a retrieval task each
# role its own ------------------------------------------------------------------------------------------------------
KIND_TEXTS = ["how tall is mont blanc", "Mont Blanc is 4,806 m high.", "¿Dónde está el Louvre?", "x"]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(cosine_rows(a, b).min()) >= 0.99999


def test_a_symmetric_task_embeds_documents_as_queries(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        queries = client.encode_queries(E5, KIND_TEXTS)
        passages = client.encode_documents(E5, KIND_TEXTS)
        sts_documents = client.encode_documents(E5, KIND_TEXTS, task="sts")
        sts_queries = client.encode_queries(E5, KIND_TEXTS, task="sts")
        sts_said = client.encode_documents(E5, KIND_TEXTS, task="sts", instruction_kind="symmetric")
        # the raw role: the text as written; with the e5 prefix written by hand it is what the template gives
        by_hand = client.encode(E5, [f"query: {t}" for t in KIND_TEXTS], role="raw")
    assert same(sts_documents, queries) and same(sts_queries, queries) and same(sts_said, queries)
    assert same(by_hand, queries)
    assert float(cosine_rows(sts_documents, passages).max()) < 0.9999  # the template did change


def test_symmetric_without_a_task_on_e5_is_the_query_template(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        queries = client.encode_queries(E5, KIND_TEXTS)
        symmetric = client.encode_documents(E5, KIND_TEXTS, instruction_kind="symmetric")
        symmetric_queries = client.encode_queries(E5, KIND_TEXTS, instruction_kind="symmetric")
        symmetric_counts = client.encode_with_counts(E5, KIND_TEXTS, instruction_kind="symmetric")[1]
        query_counts = client.encode_with_counts(E5, KIND_TEXTS, role="query")[1]
    assert same(symmetric, queries) and same(symmetric_queries, queries)
    assert symmetric_counts.tolist() == query_counts.tolist()


def test_a_retrieval_task_keeps_each_roles_template(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        passages = client.encode_documents(E5, KIND_TEXTS)
        queries = client.encode_queries(E5, KIND_TEXTS)
        scifact_documents = client.encode_documents(E5, KIND_TEXTS, task="scifact")
        scifact_queries = client.encode_queries(E5, KIND_TEXTS, task="scifact")
        retrieval_documents = client.encode_documents(E5, KIND_TEXTS, instruction_kind="retrieval")
        said = client.encode_documents(E5, KIND_TEXTS, task="scifact", instruction_kind="retrieval")
    assert same(scifact_documents, passages) and same(retrieval_documents, passages) and same(said, passages)
    assert same(scifact_queries, queries)
    assert float(cosine_rows(scifact_documents, scifact_queries).max()) < 0.9999


def test_a_kind_that_contradicts_the_task_is_refused(triton_server: Any, protocol: str) -> None:
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        with pytest.raises(InvalidRequest) as raised:
            client.encode(E5, ["x"], task="sts", instruction_kind="retrieval")
        assert "TASK 'sts' is a symmetric task, but INSTRUCTION_KIND is 'retrieval'" in str(raised.value.server_message)
        with pytest.raises(InvalidRequest, match="TASK 'scifact' is a retrieval task"):
            client.encode(E5, ["x"], task="scifact", instruction_kind="symmetric")


def test_minilm_embeds_every_kind_alike(triton_server: Any, protocol: str) -> None:
    """all-MiniLM-L6-v2's templates are all plain text: kinds and tasks are accepted and change nothing."""
    minilm = "all-MiniLM-L6-v2"
    with EmbedClient(url_of(triton_server, protocol), protocol) as client:
        plain = client.encode_documents(minilm, KIND_TEXTS)
        for options in ({"task": "sts"}, {"instruction_kind": "symmetric"}, {"task": "scifact"}):
            assert same(client.encode_documents(minilm, KIND_TEXTS, **options), plain), options
            assert same(client.encode_queries(minilm, KIND_TEXTS, **options), plain), options


def test_the_async_client_sends_the_kind(triton_server: Any, protocol: str) -> None:
    url = url_of(triton_server, protocol)
    with EmbedClient(url, protocol) as client:
        queries = client.encode_queries(E5, KIND_TEXTS)
        passages = client.encode_documents(E5, KIND_TEXTS)

    async def run() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        async with AsyncEmbedClient(url, protocol) as client:
            return (
                await client.encode_documents(E5, KIND_TEXTS, task="sts"),
                await client.encode_documents(E5, KIND_TEXTS, instruction_kind="symmetric"),
                await client.encode_documents(E5, KIND_TEXTS, task="scifact"),
            )

    sts, symmetric, scifact = asyncio.run(run())
    assert same(sts, queries) and same(symmetric, queries) and same(scifact, passages)
