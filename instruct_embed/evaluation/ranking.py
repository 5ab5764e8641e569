"""Exact cosine search: one numpy matmul over all documents, the top k per query."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to norm 1 (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def rank_by_cosine(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, doc_ids: Sequence[str], top_k: int = 100
) -> list[list[str]]:
    """For each of the [nq, dim] queries, the ids of the top_k of the [nd, dim] documents by cosine, best first.

    Ties keep the documents' input order, so the result is deterministic.
    """
    if doc_vectors.shape[0] != len(doc_ids):
        raise ValueError(f"{doc_vectors.shape[0]} document vectors for {len(doc_ids)} ids")
    if query_vectors.shape[1] != doc_vectors.shape[1]:
        raise ValueError(f"query dim {query_vectors.shape[1]} != document dim {doc_vectors.shape[1]}")
    scores = unit_rows(query_vectors) @ unit_rows(doc_vectors).T
    k = min(top_k, len(doc_ids))
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[doc_ids[j] for j in row] for row in order]
