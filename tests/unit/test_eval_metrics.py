"""The retrieval metrics against trec_eval (pytrec_eval), on toy and random rankings; the cosine ranking."""

from __future__ import annotations

import numpy as np
import pytest

from instruct_embed.evaluation.metrics import evaluate_rankings, mrr_at_k, ndcg_at_k, recall_at_k
from instruct_embed.evaluation.ranking import rank_by_cosine
from instruct_embed.evaluation.variants import Variant

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier is a dev extra: pip install -e '.[dev]'")


def test_hand_computed_example() -> None:
    judged = {"a": 1, "b": 1}
    ranked = ["x", "a", "y", "b"]
    assert ndcg_at_k(ranked, judged, 10) == pytest.approx((1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3)))
    assert recall_at_k(ranked, judged, 2) == 0.5
    assert mrr_at_k(ranked, judged, 10) == 0.5
    assert mrr_at_k(ranked, judged, 1) == 0.0
    assert ndcg_at_k(["x", "y"], judged, 10) == 0.0


def trec_eval(qrels: dict, run: dict, measures: set[str]) -> dict[str, float]:
    """Means over queries of pytrec_eval's per-query values."""
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    keys = next(iter(per_query.values())).keys()
    return {key: float(np.mean([values[key] for values in per_query.values()])) for key in keys}


def random_case(seed: int, queries: int = 40, docs: int = 300) -> tuple[dict, dict[str, dict[str, float]]]:
    rng = np.random.default_rng(seed)
    doc_ids = [f"d{i}" for i in range(docs)]
    qrels = {}
    for q in range(queries):
        judged = rng.choice(docs, size=int(rng.integers(1, 6)), replace=False)
        # graded judgements (0, 1, 2) check the linear gain and that 0 is not relevant
        qrels[f"q{q}"] = {doc_ids[j]: int(rng.integers(0, 3)) for j in judged}
        qrels[f"q{q}"][doc_ids[judged[0]]] = 1
    # distinct scores: trec_eval breaks ties by document id, the ranking here by input order
    run = {q: {d: float(s) for d, s in zip(doc_ids, rng.permutation(docs) + rng.random(), strict=True)} for q in qrels}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_trec_eval(seed: int) -> None:
    qrels, run = random_case(seed)
    rankings = {q: sorted(scores, key=scores.__getitem__, reverse=True) for q, scores in run.items()}
    ours = evaluate_rankings(qrels, rankings)
    full = trec_eval(qrels, run, {"ndcg_cut.10", "recall.100"})
    # MRR@10 is reciprocal rank on the run cut at 10 (what MTEB computes)
    cut = {q: {d: run[q][d] for d in ranked[:10]} for q, ranked in rankings.items()}
    mrr = trec_eval(qrels, cut, {"recip_rank"})
    assert ours.queries == len(qrels)
    assert ours.ndcg_at_10 == pytest.approx(full["ndcg_cut_10"], abs=1e-12)
    assert ours.recall_at_100 == pytest.approx(full["recall_100"], abs=1e-12)
    assert ours.mrr_at_10 == pytest.approx(mrr["recip_rank"], abs=1e-12)
    assert 0 < ours.ndcg_at_10 < 1


def test_a_query_without_ranking_scores_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    metrics = evaluate_rankings(qrels, {"q1": ["a"]})
    assert metrics.ndcg_at_10 == 0.5 and metrics.mrr_at_10 == 0.5 and metrics.recall_at_100 == 0.5


def test_rank_by_cosine_orders_by_angle_not_length() -> None:
    docs = np.array([[1.0, 0.0], [10.0, 10.0], [0.0, 3.0], [-1.0, 0.0]], dtype=np.float32)
    queries = np.array([[0.0, 1.0], [1.0, 0.1]], dtype=np.float32)
    ranked = rank_by_cosine(queries, docs, ["x", "diag", "y", "neg"], top_k=3)
    assert ranked == [["y", "diag", "x"], ["x", "diag", "y"]]


def test_rank_by_cosine_checks_shapes() -> None:
    with pytest.raises(ValueError, match="2 document vectors for 3 ids"):
        rank_by_cosine(np.ones((1, 2)), np.ones((2, 2)), ["a", "b", "c"])


def test_variants_send_these_roles() -> None:
    assert (Variant.CARD.query_role, Variant.CARD.document_role) == ("query", "document")
    assert (Variant.NONE.query_role, Variant.NONE.document_role) == ("raw", "raw")
    assert (Variant.SWAPPED.query_role, Variant.SWAPPED.document_role) == ("document", "query")
