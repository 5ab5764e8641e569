"""Cost-based sub-batches: the split of the sorted rows that computes the fewest padded tokens plus a cost per run."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from instruct_embed.catalog import get_spec
from instruct_embed.repository.configs import ServingOptions, encoder_config
from instruct_embed.runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings, RunStats
from instruct_embed.runtime.sub_batching import SubBatchPlan, plan_sub_batches

from .test_sub_batching import request, tiny_graph

lengths_strategy = st.lists(st.integers(min_value=1, max_value=600), max_size=80)


def _cost(plan: SubBatchPlan, run_cost: int) -> int:
    return plan.computed_tokens + run_cost * len(plan.batches)


@given(lengths_strategy, st.integers(64, 4096), st.integers(1, 64), st.integers(1, 64))
def test_cheapest_plan_keeps_the_greedy_rules(lengths: list[int], budget: int, rows: int, cost: int) -> None:
    plan = plan_sub_batches(lengths, budget, rows, run_cost_tokens=cost)
    assert sorted(r for b in plan.batches for r in b) == list(range(len(lengths)))
    for batch in plan.batches:
        assert len(batch) <= rows
        assert len(batch) * max(lengths[r] for r in batch) <= budget or len(batch) == 1
        assert [lengths[r] for r in batch] == sorted(lengths[r] for r in batch)  # shortest first, padded to the last
    assert plan.real_tokens == sum(lengths)
    assert plan.computed_tokens == sum(len(b) * lengths[b[-1]] for b in plan.batches)


@given(lengths_strategy, st.integers(64, 4096), st.integers(1, 64), st.integers(1, 64))
def test_cheapest_plan_never_costs_more_than_the_greedy_one(
    lengths: list[int], budget: int, rows: int, cost: int
) -> None:
    greedy = plan_sub_batches(lengths, budget, rows)
    cheapest = plan_sub_batches(lengths, budget, rows, run_cost_tokens=cost)
    assert _cost(cheapest, cost) <= _cost(greedy, cost)


@settings(max_examples=60)
@given(st.lists(st.integers(1, 100), min_size=1, max_size=7), st.integers(1, 40))
def test_cheapest_plan_is_the_optimum_of_every_split(lengths: list[int], cost: int) -> None:
    ordered = sorted(lengths)
    best = None
    for cuts in itertools.product((False, True), repeat=len(ordered) - 1):
        total, start = 0, 0
        for end in [i + 1 for i, c in enumerate(cuts) if c] + [len(ordered)]:
            total += (end - start) * ordered[end - 1] + cost
            start = end
        best = total if best is None else min(best, total)
    assert _cost(plan_sub_batches(lengths, 10_000, 64, run_cost_tokens=cost), cost) == best


def test_a_few_short_queries_are_not_padded_to_a_long_one() -> None:
    lengths = [12, 10, 60, 11, 9]
    greedy = plan_sub_batches(lengths, 8192, 64)
    assert len(greedy.batches) == 1 and greedy.computed_tokens == 300
    cheapest = plan_sub_batches(lengths, 8192, 64, run_cost_tokens=16)
    assert [sorted(lengths[r] for r in b) for b in cheapest.batches] == [[9, 10, 11, 12], [60]]
    assert cheapest.computed_tokens == 108 and cheapest.padding_efficiency > 0.9


def test_a_high_run_cost_keeps_one_batch() -> None:
    plan = plan_sub_batches([12, 10, 60, 11, 9], 8192, 64, run_cost_tokens=10_000)
    assert len(plan.batches) == 1


def test_encoder_with_a_run_cost_gives_what_each_request_gives_alone(tmp_path: Path) -> None:
    settings_ = CpuEncoderSettings(token_budget=10_000, max_rows=8, run_cost_tokens=2)
    encoder = CpuEncoder(tiny_graph(tmp_path / "t.onnx"), settings_)
    requests = [request([[1, 2, 3], [4]]), request([[5] * 9]), request([[6, 7], [8, 9, 10, 11], [12]])]
    stats = RunStats()
    for req, result in zip(requests, encoder.run_requests(requests, stats), strict=True):
        alone = encoder.run(req)
        assert np.array_equal(result["embedding"], alone["embedding"])
        assert np.array_equal(result["per_token"], alone["per_token"])
    assert len(stats.sub_batch_rows) > 1  # cut where the lengths jump, one run under the greedy plan


def test_run_cost_travels_from_the_serving_options_to_the_encoder() -> None:
    spec = get_spec("multilingual-e5-small")
    params = encoder_config(spec, ServingOptions(run_cost_tokens=24)).parameters
    assert CpuEncoderSettings.from_parameters({k: v.string_value for k, v in params.items()}).run_cost_tokens == 24
    assert CpuEncoderSettings.from_parameters({}).run_cost_tokens == 0


def test_each_request_is_handed_over_once_as_soon_as_its_rows_have_run(tmp_path: Path) -> None:
    encoder = CpuEncoder(tiny_graph(tmp_path / "t.onnx"), CpuEncoderSettings(token_budget=10_000, max_rows=2))
    requests = [request([[5] * 40, [6] * 30]), request([[1, 2]]), request([[3] * 20, [4, 4, 4]])]
    handed: list[tuple[int, dict[str, np.ndarray]]] = []
    results = encoder.run_requests(requests, on_done=lambda i, outputs: handed.append((i, outputs)))
    assert [i for i, _ in handed] == [1, 2, 0]  # the one-row query first, the longest last
    for i, outputs in handed:
        assert outputs is results[i] and outputs["embedding"].shape == (requests[i]["input_ids"].shape[0], 2)
