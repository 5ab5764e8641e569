"""nDCG@k, Recall@k and MRR@k as trec_eval defines them (checked against pytrec_eval in tests/unit).

- nDCG@k: linear gain (the judgement value), discount log2(rank + 1), ideal ranking from the judgements; trec_eval's
  `ndcg_cut`, which MTEB reports as nDCG@10.
- Recall@k: relevant documents (judgement > 0) in the top k over all relevant documents; trec_eval's `recall`.
- MRR@k: 1 / rank of the first relevant document in the top k, 0 if none; trec_eval's `recip_rank` on a run cut at k,
  which is what MTEB's MRR@10 computes.
Each is the mean over the judged queries; a judged query with no ranking scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

Qrels = Mapping[str, Mapping[str, int]]
Rankings = Mapping[str, Sequence[str]]


def ndcg_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    dcg = sum(judged.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if judged.get(doc, 0) > 0)
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, g in judged.items() if g > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranked[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


@dataclass(frozen=True)
class RetrievalMetrics:
    """Means over `queries` judged queries, each in [0, 1]."""

    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def evaluate_rankings(qrels: Qrels, rankings: Rankings) -> RetrievalMetrics:
    """Scores `rankings` (query id -> document ids, best first, at least 100 long where the corpus allows)."""
    if not qrels:
        raise ValueError("no judged queries")
    totals = [0.0, 0.0, 0.0]
    for query_id, judged in qrels.items():
        ranked = rankings.get(query_id, ())
        totals[0] += ndcg_at_k(ranked, judged, 10)
        totals[1] += recall_at_k(ranked, judged, 100)
        totals[2] += mrr_at_k(ranked, judged, 10)
    n = len(qrels)
    return RetrievalMetrics(totals[0] / n, totals[1] / n, totals[2] / n, n)
