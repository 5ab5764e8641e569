"""Ragged requests re-batched by length: same answers as one request at a time, far less padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from instruct_embed.runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings, RunStats
from instruct_embed.runtime.sub_batching import plan_sub_batches


@given(st.lists(st.integers(min_value=1, max_value=600), max_size=120), st.integers(64, 4096), st.integers(1, 64))
def test_plan_covers_every_row_once_within_the_budget(lengths: list[int], budget: int, max_rows: int) -> None:
    plan = plan_sub_batches(lengths, budget, max_rows)
    rows = [r for b in plan.batches for r in b]
    assert sorted(rows) == list(range(len(lengths)))
    for batch in plan.batches:
        assert len(batch) <= max_rows
        padded = len(batch) * max(lengths[r] for r in batch)
        assert padded <= budget or len(batch) == 1  # a row longer than the budget runs alone
    assert plan.real_tokens == sum(lengths) and plan.computed_tokens >= plan.real_tokens


def test_sorting_removes_most_padding_from_a_query_document_mix() -> None:
    lengths = [12, 480] * 32  # short queries interleaved with long passages
    plan = plan_sub_batches(lengths, token_budget=8192, max_rows=64)
    naive = len(lengths) * max(lengths)
    assert plan.padding_efficiency > 0.99
    assert sum(lengths) / naive < 0.6


def tiny_graph(path: Path) -> str:
    """embedding[b, 2] = (sum of ids under the mask, count under the mask); per_token[b, s] = ids * mask."""
    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    emb = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 2])
    tok = helper.make_tensor_value_info("per_token", TensorProto.FLOAT, ["batch", "sequence"])
    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["masked"]),
        helper.make_node("Cast", ["masked"], ["per_token"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["per_token", "axes"], ["total"], keepdims=1),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["mask_f", "axes"], ["count"], keepdims=1),
        helper.make_node("Concat", ["total", "count"], ["embedding"], axis=1),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(nodes, "tiny", [ids, mask], [emb, tok], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return str(path)


def request(rows: list[list[int]]) -> dict[str, np.ndarray]:
    length = max(len(r) for r in rows)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


@pytest.mark.parametrize("budget", [4, 16, 10_000])
def test_many_requests_give_what_each_gives_alone(tmp_path: Path, budget: int) -> None:
    encoder = CpuEncoder(tiny_graph(tmp_path / "t.onnx"), CpuEncoderSettings(token_budget=budget, max_rows=3))
    requests = [request([[1, 2, 3], [4]]), request([[5] * 9]), request([[6, 7], [8, 9, 10, 11], [12]])]
    stats = RunStats()
    together = encoder.run_requests(requests, stats)
    for req, result in zip(requests, together, strict=True):
        alone = encoder.run(req)
        assert np.array_equal(result["embedding"], alone["embedding"])
        assert np.array_equal(result["per_token"], alone["per_token"])  # same positions, zero on padding
        assert result["per_token"].shape == req["input_ids"].shape
    assert stats.real_tokens == 20
    assert stats.computed_tokens >= 20 and sum(stats.sub_batch_rows) == 6


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.lists(st.integers(1, 50), min_size=1, max_size=12), min_size=1, max_size=4), max_size=6))
def test_ragged_batches_never_mix_rows_up(tmp_path_factory: pytest.TempPathFactory, shapes: list) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.onnx"
    encoder = CpuEncoder(
        tiny_graph(path) if not path.exists() else str(path), CpuEncoderSettings(token_budget=24, max_rows=4)
    )
    requests = [request(rows) for rows in shapes]
    for req, result in zip(requests, encoder.run_requests(requests), strict=True):
        expected = np.array([[sum(r), len(r)] for r in _rows(req)], dtype=np.float32)
        assert np.array_equal(result["embedding"], expected)


def _rows(req: dict[str, np.ndarray]) -> list[list[int]]:
    return [[int(v) for v, m in zip(ids, mask, strict=True) if m] for ids, mask in zip(
        req["input_ids"], req["attention_mask"], strict=True)]  # fmt: skip
