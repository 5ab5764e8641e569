"""Matryoshka sizes (DIMENSIONS): which sizes a request may ask for, and the cut itself (no Triton import).

The preprocess step checks a request's DIMENSIONS against the model's sizes before any encoding is spent on it,
and passes one size per row to the postprocess step, which returns the first n components renormalised. Only a
model trained for Matryoshka sizes has a postprocess step; the others take DIMENSIONS equal to their width alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import RequestError


def allowed_sizes(matryoshka_dims: Sequence[int], dim: int) -> tuple[int, ...]:
    return tuple(sorted({*matryoshka_dims, dim}))


def requested_size(values: np.ndarray | None, n: int, matryoshka_dims: Sequence[int], dim: int, model: str) -> int:
    """The one size a request asks for (its width when DIMENSIONS is not sent); RequestError names the allowed."""
    if values is None:
        return dim
    flat = values.reshape(-1)
    if flat.shape[0] != n:
        raise RequestError(f"DIMENSIONS has {flat.shape[0]} rows but TEXT has {n}; send one per text")
    sizes = {int(v) for v in flat}
    if len(sizes) > 1:
        raise RequestError("DIMENSIONS must be the same for every text of a request")
    size = sizes.pop()
    allowed = allowed_sizes(matryoshka_dims, dim)
    if size not in allowed:
        if not matryoshka_dims:
            raise RequestError(
                f"DIMENSIONS {size}: model '{model}' was not trained for Matryoshka sizes and returns its full "
                f"width only; allowed: {dim} (or send no DIMENSIONS)"
            )
        sizes_text = ", ".join(str(s) for s in allowed)
        raise RequestError(f"DIMENSIONS {size} is not one of model '{model}''s Matryoshka sizes; allowed: {sizes_text}")
    return size


def matryoshka_prefix(embedding: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The first n components of each row, renormalised; `sizes` ([rows, 1]) holds one n, checked by preprocess."""
    n = int(sizes.reshape(-1)[0]) if sizes.size else embedding.shape[1]
    if n >= embedding.shape[1]:
        return embedding  # the full width: the encoder's vector, bit for bit
    cut = embedding[:, :n]
    norms = np.linalg.norm(cut, axis=1, keepdims=True)
    return (cut / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
