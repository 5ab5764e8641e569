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


def plan_sub_batches(
    lengths: Sequence[int], token_budget: int, max_rows: int, run_cost_tokens: int = 0
) -> SubBatchPlan:
    """Group rows so that each sub-batch's rows x max length <= token_budget (a longer row runs alone).

    With `run_cost_tokens` 0, sorted rows fill each sub-batch up to the budget (greedy). With a positive cost, the
    split of the sorted rows is the one that computes the fewest padded tokens plus `run_cost_tokens` per run
    (what one more ONNX Runtime run costs, in tokens): a handful of requests of mixed lengths in one execute is
    then cut where their lengths jump, instead of all being padded to the longest.
    """
    if token_budget < 1 or max_rows < 1 or run_cost_tokens < 0:
        raise ValueError("token_budget and max_rows must be positive, run_cost_tokens not negative")
    if run_cost_tokens:
        return _cheapest_plan(lengths, token_budget, max_rows, run_cost_tokens)
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


def _cheapest_plan(lengths: Sequence[int], token_budget: int, max_rows: int, run_cost: int) -> SubBatchPlan:
    # Dynamic programming over the sorted rows: best[j] is the cheapest plan of the first j rows, whose last
    # sub-batch is rows cut[j]..j-1 (padded to row j-1, the longest). O(rows x rows per sub-batch).
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    sorted_lengths = [lengths[i] for i in order]
    n = len(order)
    best = [0] + [-1] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        longest = sorted_lengths[end - 1]
        for start in range(end - 1, -1, -1):
            rows = end - start
            if rows > 1 and (rows > max_rows or rows * longest > token_budget):
                break
            cost = best[start] + rows * longest + run_cost
            if best[end] < 0 or cost < best[end]:
                best[end], cut[end] = cost, start
    batches: list[tuple[int, ...]] = []
    end = n
    while end > 0:
        batches.append(tuple(order[cut[end] : end]))
        end = cut[end]
    batches.reverse()
    computed = sum(len(b) * lengths[b[-1]] for b in batches)
    return SubBatchPlan(tuple(batches), int(sum(lengths)), int(computed))
