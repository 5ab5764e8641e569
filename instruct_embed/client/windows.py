"""What CHUNK windows returns per text: every window's vector with where the window lies in the text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TextWindows:
    """One text's windows, in order: `vectors` [k, width] (of the storage type asked for), `tokens` [k, 2] the
    [start, end) of each window in the text's own tokens (no specials, no template), `chars` [k, 2] the same in
    its characters (text[start:end] is the window), `token_counts` [k] the tokens each window was embedded with
    (specials and template included)."""

    vectors: np.ndarray
    tokens: np.ndarray
    chars: np.ndarray
    token_counts: np.ndarray

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def split_by_text(
    texts: int, owner: np.ndarray, vectors: np.ndarray, tokens: np.ndarray, chars: np.ndarray, counts: np.ndarray
) -> list[TextWindows]:
    """One request's window rows grouped by the text each came from (`owner`, rows in text order)."""
    owner = owner.reshape(-1)
    return [
        TextWindows(vectors[rows], tokens[rows], chars[rows], counts.reshape(-1)[rows])
        for rows in (np.flatnonzero(owner == text) for text in range(texts))
    ]


def in_order(parts: Sequence[list[TextWindows]], positions: Sequence[Sequence[int]], n: int) -> list[TextWindows]:
    """Requests' answers back in the caller's order (`positions[i]`: the caller's index of each text of part i)."""
    ordered: list[TextWindows | None] = [None] * n
    for part, indices in zip(parts, positions, strict=True):
        for windows, index in zip(part, indices, strict=True):
            ordered[index] = windows
    assert all(w is not None for w in ordered)
    return ordered  # type: ignore[return-value]
