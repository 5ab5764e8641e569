"""Splitting a large input into server-sized requests, and putting the answers back in order.

Texts are sorted by length before they are cut into requests, so each request pads to a similar length
(padding short texts to a long neighbour's length is wasted compute), then the rows are restored to input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """One request: the positions (in the caller's order) of the texts it carries."""

    positions: tuple[int, ...]


def plan_chunks(texts: Sequence[str], max_batch: int, sort_by_length: bool = True) -> list[Chunk]:
    """Cut `texts` into requests of at most `max_batch` texts, grouping similar lengths when asked."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if sort_by_length else list(range(len(texts)))
    return [Chunk(tuple(order[i : i + max_batch])) for i in range(0, len(order), max_batch)]


def reassemble(chunks: Sequence[Chunk], results: Sequence[np.ndarray], total: int) -> np.ndarray:
    """Rows of `results[i]` belong to `chunks[i].positions`; returns them in the caller's order."""
    if not results:
        raise ValueError("nothing to reassemble")
    out = np.empty((total, *results[0].shape[1:]), dtype=results[0].dtype)
    for chunk, rows in zip(chunks, results, strict=True):
        if rows.shape[0] != len(chunk.positions):
            raise ValueError(f"a request for {len(chunk.positions)} texts came back with {rows.shape[0]} rows")
        if len(chunk.positions) == 1:  # one text (every online query): no index array to build
            out[chunk.positions[0]] = rows[0]
        else:
            out[list(chunk.positions)] = rows
    return out
