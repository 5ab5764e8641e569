"""Every seed family's miniature served end to end by the local Triton server, against its card's oracle.

One server for all miniatures, with their real templates and tokenizers, the Python ONNX Runtime encoder and
the rendered configs (pool_mask for NV-Embed, three outputs for BGE-M3).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from instruct_embed.client.lexical import lexical_weights
from instruct_embed.export.validate import build_prompts, cosine_rows, sparse_difference
from instruct_embed.repository.configs import triton_models
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt
from tests.miniature_support import DOCUMENTS, QUERIES, SERVED_MODELS, mini_spec, oracle, prepared

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def miniature_server() -> Iterator[Any]:
    from instruct_embed.server import LocalTritonServer, ServerOptions
    from instruct_embed.server.process import free_port

    repository = {prepared(name).repository for name in SERVED_MODELS}
    assert len(repository) == 1, "miniatures render into one repository"
    root = repository.pop()
    models = tuple(name for n in SERVED_MODELS for name in triton_models(mini_spec(n)))
    options = ServerOptions(
        repository=root,
        models=models,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=root.parent / "tritonserver-miniatures.log",
    )
    with LocalTritonServer(options) as server:
        yield server


@pytest.fixture(scope="module")
def client(miniature_server: Any) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(miniature_server.http_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(miniature_server: Any) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(miniature_server.grpc_url)
    yield client
    client.close()


def infer(client: Any, model: str, texts: list[str], role: str, **optional: str) -> dict[str, np.ndarray]:
    """One request over HTTP or gRPC (the module of `client` builds the inputs)."""
    module = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    columns = {"TEXT": texts, "ROLE": [role] * len(texts), **{k: [v] * len(texts) for k, v in optional.items()}}
    inputs = []
    for name, values in columns.items():
        tensor = module.InferInput(name, [len(texts), 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[v.encode()] for v in values], dtype=object))
        inputs.append(tensor)
    result = client.infer(model, inputs)
    if module is grpcclient:
        names = [o.name for o in result.get_response().outputs]
    else:
        names = [o["name"] for o in result.get_response()["outputs"]]
    return {name: result.as_numpy(name) for name in names}


@pytest.mark.parametrize("name", SERVED_MODELS)
def test_served_vectors_equal_the_oracle(client: httpclient.InferenceServerClient, name: str) -> None:
    spec = mini_spec(name)
    prompts = build_prompts(spec, QUERIES) + build_prompts(spec, DOCUMENTS)
    expected = oracle(name).embed_prompts(prompts).dense
    served = np.concatenate(
        [
            infer(client, name, list(QUERIES), "query")["EMBEDDING"],
            infer(client, name, list(QUERIES), "document")["EMBEDDING"],
            infer(client, name, list(DOCUMENTS), "query")["EMBEDDING"],
            infer(client, name, list(DOCUMENTS), "document")["EMBEDDING"],
        ]
    )
    assert served.shape == (len(prompts), spec.dim)
    assert float(cosine_rows(served, expected).min()) >= 0.9999
    singles = np.concatenate([infer(client, name, [t], "query")["EMBEDDING"] for t in QUERIES])
    assert float(cosine_rows(singles, served[: len(QUERIES)]).min()) >= 0.99999


@pytest.mark.parametrize("name", SERVED_MODELS)
def test_grpc_serves_the_oracles_vectors_too(grpc_client: grpcclient.InferenceServerClient, name: str) -> None:
    spec = mini_spec(name)
    prompts = build_prompts(spec, QUERIES)
    served = np.concatenate(
        [infer(grpc_client, name, list(QUERIES), role)["EMBEDDING"] for role in ("query", "document")]
    )
    assert float(cosine_rows(served, oracle(name).embed_prompts(prompts).dense).min()) >= 0.9999


@pytest.mark.parametrize("name", SERVED_MODELS)
def test_a_symmetric_task_embeds_documents_as_queries_and_as_the_oracle(
    client: httpclient.InferenceServerClient, grpc_client: grpcclient.InferenceServerClient, name: str
) -> None:
    spec = mini_spec(name)
    templates = PromptTemplates.from_config(spec.runtime_config())
    texts = list(DOCUMENTS)
    prompts = [resolve_prompt(templates, t, "document", task="sts") for t in texts]
    assert all(p.full.startswith(spec.symmetric_template.removesuffix("{text}").split("{task}")[0]) for p in prompts)
    expected = oracle(name).embed_prompts(prompts).dense
    for transport in (client, grpc_client):
        as_document = infer(transport, name, texts, "document", TASK="sts")["EMBEDDING"]
        as_query = infer(transport, name, texts, "query", TASK="sts")["EMBEDDING"]
        assert np.array_equal(as_document, as_query), "a symmetric task ignores the role"
        assert float(cosine_rows(as_document, expected).min()) >= 0.9999
    # A retrieval task leaves documents on their own template, by the card's rule.
    retrieval = infer(client, name, texts, "document", TASK="scifact")["EMBEDDING"]
    plain = infer(client, name, texts, "document")["EMBEDDING"]
    assert np.array_equal(retrieval, plain)


@pytest.mark.parametrize("name", ["e5-mistral-7b-instruct", "gte-Qwen2-7B-instruct", "NV-Embed-v2"])
def test_served_instruction_is_the_oracles(client: httpclient.InferenceServerClient, name: str) -> None:
    spec = mini_spec(name)
    templates = PromptTemplates.from_config(spec.runtime_config())
    instruction = "Given a claim, find documents that refute the claim"
    prompts = [resolve_prompt(templates, t, "query", instruction=instruction) for t in QUERIES]
    served = infer(client, name, list(QUERIES), "query", INSTRUCTION=instruction)["EMBEDDING"]
    assert float(cosine_rows(served, oracle(name).embed_prompts(prompts).dense).min()) >= 0.9999
    default = infer(client, name, list(QUERIES), "query")["EMBEDDING"]
    assert float(cosine_rows(served, default).max()) < 0.9999, "the instruction must change the vector"


def test_served_bge_m3_sparse_and_colbert(client: httpclient.InferenceServerClient) -> None:
    name = "bge-m3"
    texts = [*QUERIES, *DOCUMENTS, "the the the cat"]
    spec = mini_spec(name)
    expected = oracle(name).embed_prompts(build_prompts(spec, texts)[: len(texts)])
    out = infer(client, name, texts, "query")
    counts = out["TOKEN_COUNT"].reshape(-1)
    width = out["TOKEN_IDS"].shape[1]
    assert out["SPARSE_WEIGHTS"].shape == (len(texts), width)
    assert out["COLBERT_VECTORS"].shape == (len(texts), width, spec.dim)
    assert expected.sparse is not None and expected.colbert is not None
    for row, count in enumerate(counts.tolist()):
        weights = lexical_weights(out["TOKEN_IDS"][row, :count], out["SPARSE_WEIGHTS"][row, :count])
        assert sparse_difference(weights, expected.sparse[row]) <= 1e-5
        colbert = out["COLBERT_VECTORS"][row]
        assert np.allclose(np.linalg.norm(colbert[1:count], axis=1), 1.0, atol=1e-5)
        assert not colbert[0].any() and not colbert[count:].any(), "CLS and padding rows are zero"
        assert float(np.sum(colbert[1:count] * expected.colbert[row], axis=1).min()) >= 0.9999


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_qwen3_matryoshka_dimensions_are_the_renormalised_prefix(miniature_server: Any, protocol: str) -> None:
    from instruct_embed.client import EmbedClient, InvalidRequest

    name = "Qwen3-Embedding-0.6B"
    spec = mini_spec(name)
    assert spec.matryoshka_dims == (32, 64), "the miniature (width 64) keeps the card's sizes it can hold"
    url = miniature_server.http_url if protocol == "http" else miniature_server.grpc_url
    with EmbedClient(url, protocol) as sdk:
        full = sdk.encode(name, list(QUERIES), is_query=True)
        cut = sdk.encode(name, list(QUERIES), is_query=True, dimensions=32)
        with pytest.raises(InvalidRequest, match=r"DIMENSIONS 48 .* allowed: 32, 64"):
            sdk.encode(name, list(QUERIES), dimensions=48)
    assert cut.shape == (len(QUERIES), 32)
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)
    prefix = full[:, :32] / np.linalg.norm(full[:, :32], axis=1, keepdims=True)
    assert np.allclose(cut, prefix, atol=1e-6)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_dimensions_over_kserve_cut_on_the_server(
    client: httpclient.InferenceServerClient, grpc_client: grpcclient.InferenceServerClient, protocol: str
) -> None:
    """A raw KServe request with DIMENSIONS: the answer is already 32 wide, the prefix of the full vector."""
    kserve = client if protocol == "http" else grpc_client
    module = httpclient if protocol == "http" else grpcclient
    name, texts = "Qwen3-Embedding-0.6B", list(DOCUMENTS)
    full = infer(kserve, name, texts, "document")
    inputs = []
    for column, values in (("TEXT", texts), ("ROLE", ["document"] * len(texts))):
        tensor = module.InferInput(column, [len(texts), 1], "BYTES")
        tensor.set_data_from_numpy(np.array([[v.encode()] for v in values], dtype=object))
        inputs.append(tensor)
    sizes = module.InferInput("DIMENSIONS", [len(texts), 1], "INT32")
    sizes.set_data_from_numpy(np.full((len(texts), 1), 32, dtype=np.int32))
    result = kserve.infer(name, [*inputs, sizes])
    cut = result.as_numpy("EMBEDDING")
    assert cut.shape == (len(texts), 32)
    prefix = full["EMBEDDING"][:, :32]
    assert np.allclose(cut, prefix / np.linalg.norm(prefix, axis=1, keepdims=True), atol=1e-6)
    assert np.array_equal(result.as_numpy("TOKEN_COUNT"), full["TOKEN_COUNT"]), "the cut changes no token count"
