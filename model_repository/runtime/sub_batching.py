"""Length-sorted, token-budgeted sub-batches: the rows of many requests, run without padding waste.

Triton's dynamic batcher hands the encoder several requests of different lengths at once (the encoder's inputs
allow ragged batches). Padding them all to the longest would compute mostly padding on a mix of short queries
and long passages, so the rows are sorted by length and cut into sub-batches whose padded size (rows x longest
row) stays within a token budget; each sub-batch is padded only to its own longest row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SubBatchPlan:
    batches: tuple[tuple[int, ...], ...]  # row indices per sub-batch, shortest rows first
    real_tokens: int
    computed_tokens: int  # rows x padded length, summed over sub-batches

    @property
    def padding_efficiency(self) -> float:
        return self.real_tokens / self.computed_tokens if self.computed_tokens else 1.0


def plan_sub_batches(lengths: Sequence[int], token_budget: int, max_rows: int) -> SubBatchPlan:
    """Group rows so that each sub-batch's rows x max length <= token_budget (a longer row runs alone)."""
    if token_budget < 1 or max_rows < 1:
        raise ValueError("token_budget and max_rows must be positive")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[tuple[int, ...]] = []
    current: list[int] = []
    computed = 0
    for index in order:
        longest = lengths[index]  # ascending order: the newcomer is the longest so far
        if current and ((len(current) + 1) * longest > token_budget or len(current) >= max_rows):
            computed += len(current) * lengths[current[-1]]
            batches.append(tuple(current))
            current = []
        current.append(index)
    if current:
        computed += len(current) * lengths[current[-1]]
        batches.append(tuple(current))
    return SubBatchPlan(tuple(batches), int(sum(lengths)), computed)
