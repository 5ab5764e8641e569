"""BGE-M3's per-token outputs in FlagEmbedding's forms (numpy only; see docs/bge-m3.md)."""

from __future__ import annotations

import numpy as np


def lexical_weights(token_ids: np.ndarray, weights: np.ndarray) -> dict[int, float]:
    """One text's ids [tokens] and SPARSE_WEIGHTS [tokens] -> {token id: its largest weight}.

    Only weights above zero are kept (the server already zeroes special tokens and padding), as in
    FlagEmbedding's ``lexical_weights``.
    """
    result: dict[int, float] = {}
    for token, weight in zip(token_ids.tolist(), weights.tolist(), strict=True):
        if weight > 0 and weight > result.get(token, 0.0):
            result[token] = weight
    return result


def lexical_score(query: dict[int, float], document: dict[int, float]) -> float:
    """FlagEmbedding's ``compute_lexical_matching_score``: the sum of weight products over shared ids."""
    return float(sum(weight * document[token] for token, weight in query.items() if token in document))


def colbert_score(query: np.ndarray, document: np.ndarray) -> float:
    """FlagEmbedding's ``colbert_score``: each query vector's best dot product with the document's, averaged.

    Both are [tokens - 1, dim] unit rows (COLBERT_VECTORS[i, 1:TOKEN_COUNT[i]]).
    """
    return float((query @ document.T).max(axis=1).mean())
