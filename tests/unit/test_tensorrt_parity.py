"""The parity step: which batches it runs, that it passes a faithful runner and fails loudly otherwise, and the
Polygraphy commands and data loader it writes. Runners here are ONNX Runtime or numpy, never TensorRT."""

from __future__ import annotations

import runpy
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from instruct_embed.catalog import Precision, get_spec
from instruct_embed.export.tensorrt.engine_graph import engine_graph_path, prepare_engine_graph
from instruct_embed.export.tensorrt.parity import (
    ParityError,
    check_parity,
    ort_reference,
    parity_batches,
    parity_prompts,
    parity_tokenizer,
    polygraphy_commands,
    write_polygraphy_data,
)
from instruct_embed.export.tensorrt.profiles import plan_batching
from tests.unit.tensorrt_support import TINY_MODEL, VOCAB_SIZE, shared_tiny_home

SPEC = get_spec(TINY_MODEL)


@pytest.fixture(scope="module")
def tiny():
    return shared_tiny_home()


@pytest.fixture(scope="module")
def plan():
    return plan_batching(SPEC, max_batch_size=8, buckets=(16, 64))


@pytest.fixture(scope="module")
def batches(tiny, plan):
    tokenizer = parity_tokenizer(SPEC, tiny.hf_dir / "tokenizer.json", plan)
    return parity_batches(SPEC, tokenizer, parity_prompts(SPEC), plan)


def bag_of_ids(feed: Mapping[str, np.ndarray]) -> np.ndarray:
    """A cheap deterministic 'model': the normalised histogram of each row's real token ids."""
    rows = [np.bincount(ids[mask == 1], minlength=VOCAB_SIZE) for ids, mask in zip(*feed.values(), strict=True)]
    vectors = np.asarray(rows, dtype=np.float32) + 1e-3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_batches_cover_singles_full_batches_and_every_bucket(batches, plan) -> None:
    prompts = parity_prompts(SPEC)
    singles = [b for b in batches if len(b.indices) == 1]
    assert sorted(b.indices[0] for b in singles) == list(range(len(prompts)))
    assert [b.name for b in batches if b.name.startswith("batch of")] == ["batch of 8", "batch of 8"]
    lengths = {b.feed["input_ids"].shape[1] for b in singles}
    for low, high in plan.sequence_ranges:
        assert any(low <= n <= high for n in lengths), (low, high)
    assert max(lengths) == plan.max_sequence  # the long text is truncated where the repository truncates
    assert any(b.name.startswith("bucket 17-64") for b in batches)
    for batch in batches:
        assert list(batch.feed) == ["input_ids", "attention_mask"]
        assert batch.feed["input_ids"].shape[0] == len(batch.indices) <= plan.max_batch_size
        assert batch.feed["attention_mask"].sum(axis=1).min() > 0  # no all-padding row


def test_a_faithful_16_bit_runner_passes(tiny, batches) -> None:
    """ONNX Runtime over the fp16 engine graph (int32 ids) against ONNX Runtime fp32 (int64 ids)."""
    import onnxruntime as ort

    source = tiny.onnx_file("fp16")
    graph = prepare_engine_graph(SPEC, source, engine_graph_path(source), Precision.FP16)
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])

    def fp16(feed):
        return session.run(["embedding"], {k: v.astype(np.int32) for k, v in feed.items()})[0]

    report = check_parity(batches, fp16, ort_reference(tiny.onnx_file("fp32"), SPEC))
    assert report.min_cosine >= 0.999 and report.min_batch_vs_single >= 0.999
    assert report.rows == sum(len(b.indices) for b in batches)
    assert "min cosine vs ONNX Runtime fp32" in str(report)


def test_passes_when_engine_and_reference_agree(batches) -> None:
    report = check_parity(batches, bag_of_ids, bag_of_ids)
    assert report.min_cosine == pytest.approx(1.0)


def test_drift_from_the_reference_fails_loudly(batches) -> None:
    def drifted(feed):
        vectors = bag_of_ids(feed)
        vectors[:, 0] += 0.2
        return vectors

    with pytest.raises(ParityError, match=r"cosine 0\.\d+ < 0.999 vs fp32"):
        check_parity(batches, drifted, bag_of_ids)


def test_nan_fails(batches) -> None:
    def broken(feed):
        vectors = bag_of_ids(feed)
        vectors[-1, 3] = np.nan
        return vectors

    with pytest.raises(ParityError, match="NaN or Inf"):
        check_parity(batches, broken, bag_of_ids)


def test_a_batch_that_changes_the_vectors_fails(batches) -> None:
    def batch_dependent(feed):
        vectors = bag_of_ids(feed)
        if vectors.shape[0] > 1:
            vectors[:, 1] += 0.2
        return vectors

    with pytest.raises(ParityError, match="differs from its single run"):
        check_parity(batches, batch_dependent, lambda feed: batch_dependent(feed))


def test_polygraphy_commands_compare_the_engine_with_saved_fp32_outputs(tmp_path: Path) -> None:
    commands = polygraphy_commands(
        tmp_path / "model.fp32.trt.onnx", tmp_path / "model.sm90.plan", tmp_path / "data.py", tmp_path / "ref.json"
    )
    assert commands == [
        [
            "polygraphy",
            "run",
            f"{tmp_path}/model.fp32.trt.onnx",
            "--onnxrt",
            "--data-loader-script",
            f"{tmp_path}/data.py",
            "--save-outputs",
            f"{tmp_path}/ref.json",
        ],
        [
            "polygraphy",
            "run",
            f"{tmp_path}/model.sm90.plan",
            "--model-type",
            "engine",
            "--trt",
            "--data-loader-script",
            f"{tmp_path}/data.py",
            "--load-outputs",
            f"{tmp_path}/ref.json",
            "--atol",
            "0.01",
            "--rtol",
            "0.0",
        ],
    ]


def test_polygraphy_data_loader_yields_the_real_int32_feeds(batches, tmp_path: Path) -> None:
    feeds = [b.feed for b in batches[:3]]
    script = write_polygraphy_data(feeds, tmp_path / "polygraphy" / "parity_data.py")
    loaded = list(runpy.run_path(str(script))["load_data"]())
    assert len(loaded) == 3
    for got, want in zip(loaded, feeds, strict=True):
        assert list(got) == list(want)
        for name in want:
            assert got[name].dtype == np.int32
            np.testing.assert_array_equal(got[name], want[name])
