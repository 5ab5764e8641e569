"""One retrieval evaluation: embed queries and documents with a variant's roles, rank by cosine, score."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from instruct_embed.evaluation.data import RetrievalSet
from instruct_embed.evaluation.embedders import Embedder
from instruct_embed.evaluation.metrics import RetrievalMetrics, evaluate_rankings
from instruct_embed.evaluation.ranking import rank_by_cosine
from instruct_embed.evaluation.variants import Variant

TOP_K = 100  # Recall@100 needs the top 100; nDCG@10 and MRR@10 the top 10


@dataclass(frozen=True)
class EvalResult:
    """Scores of one (dataset, model, variant, embedder) run, with its wall time (embedding and ranking)."""

    dataset: str
    model: str
    variant: Variant
    embedder: str
    metrics: RetrievalMetrics
    documents: int
    seconds: float

    @property
    def texts(self) -> int:
        return self.metrics.queries + self.documents

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "variant": self.variant.value,
            "embedder": self.embedder,
            **self.metrics.as_dict(),
            "documents": self.documents,
            "seconds": round(self.seconds, 2),
            "texts_per_s": round(self.texts_per_s, 2),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def summary(self) -> str:
        m = self.metrics
        return (
            f"{self.dataset} {self.model} variant={self.variant.value} ({self.embedder})\n"
            f"  nDCG@10 {m.ndcg_at_10:.5f}  Recall@100 {m.recall_at_100:.5f}  MRR@10 {m.mrr_at_10:.5f}\n"
            f"  {m.queries} queries, {self.documents} documents: {self.seconds:.1f} s, {self.texts_per_s:.1f} texts/s"
        )


def run_retrieval(
    data: RetrievalSet, embedder: Embedder, model: str, variant: Variant, show_progress: bool = True
) -> EvalResult:
    """Embeds every query and document of `data` with `variant`'s roles and scores the cosine ranking."""
    from tqdm import tqdm

    query_ids, doc_ids = list(data.queries), list(data.corpus)
    started = time.perf_counter()
    with tqdm(
        total=len(query_ids) + len(doc_ids),
        unit="text",
        desc=f"{model} {variant.value}",
        disable=not show_progress,
        file=sys.stderr,
    ) as bar:
        doc_vectors = embedder.embed([data.corpus[d] for d in doc_ids], variant.document_role, bar.update)
        query_vectors = embedder.embed([data.queries[q] for q in query_ids], variant.query_role, bar.update)
    rankings = dict(zip(query_ids, rank_by_cosine(query_vectors, doc_vectors, doc_ids, TOP_K), strict=True))
    seconds = time.perf_counter() - started
    return EvalResult(
        dataset=data.name,
        model=model,
        variant=variant,
        embedder=embedder.label,
        metrics=evaluate_rankings(data.qrels, rankings),
        documents=len(doc_ids),
        seconds=seconds,
    )
