"""Retrieval quality through the real server equals the in-process PyTorch computation (a fixed SciFact subset)."""

from __future__ import annotations

from typing import Any

import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.client import EmbedClient
from instruct_embed.evaluation import DataError, Variant, limit, load_scifact, run_retrieval
from instruct_embed.evaluation.embedders import InProcessEmbedder, ServerEmbedder

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"
# 40 queries, their 44 judged abstracts and 156 fixed distractors (abstracts average 358 tokens). Measured on 2 cores
# shared with other work (load average 5-8): 51 s through the server, 98 s in-process; both nDCG@10 0.85416.
QUERIES, DOCUMENTS = 40, 200


@pytest.fixture(scope="module")
def subset() -> Any:
    try:
        data = load_scifact()
    except DataError as error:
        pytest.skip(f"SciFact is not available: {error}")
    return limit(data, max_docs=DOCUMENTS, max_queries=QUERIES)


def test_server_ndcg_equals_in_process_pytorch(
    subset: Any, triton_server: Any, prepared_models: dict[str, Any], record_property: Any
) -> None:
    with EmbedClient(triton_server.http_url) as client:
        served = run_retrieval(subset, ServerEmbedder(client, E5), E5, Variant.CARD, show_progress=False)
    in_process = InProcessEmbedder(get_spec(E5), prepared_models[E5].hf_dir)
    local = run_retrieval(subset, in_process, E5, Variant.CARD, show_progress=False)
    for name, result in (("server", served), ("in_process", local)):
        record_property(f"{name}_ndcg_at_10", result.metrics.ndcg_at_10)
        print(result.summary())
    assert served.metrics.queries == local.metrics.queries == QUERIES
    assert served.documents == local.documents == DOCUMENTS
    assert abs(served.metrics.ndcg_at_10 - local.metrics.ndcg_at_10) <= 0.001
    assert abs(served.metrics.mrr_at_10 - local.metrics.mrr_at_10) <= 0.001
    assert abs(served.metrics.recall_at_100 - local.metrics.recall_at_100) <= 0.001
    # a sanity floor: with the card's prefixes e5-small ranks the judged abstract high on this subset
    assert served.metrics.ndcg_at_10 > 0.6
