"""Every seed family's 16-bit export becomes a valid engine graph: int32 ids, fp32 norms and pooling, the spec's
signature. Run in ONNX Runtime on each family's miniature (no TensorRT, no GPU): the graph TensorRT would be fed.

bf16 graphs are checked structurally (ONNX Runtime has no bf16 kernels on CPU); fp16 ones also numerically.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from instruct_embed.catalog import Precision
from instruct_embed.catalog.families import traits
from instruct_embed.export.onnx_export import ExportOptions, export_onnx
from instruct_embed.export.tensorrt.engine_graph import engine_graph_path, prepare_engine_graph
from instruct_embed.export.tensorrt.parity import parity_batches, parity_prompts, parity_tokenizer
from instruct_embed.export.tensorrt.profiles import plan_batching
from instruct_embed.export.tensorrt.signature import expected_signature
from tests.miniature_support import SERVED_MODELS, mini_spec, prepared

pytestmark = pytest.mark.slow


def _run(path: Path, feed: dict[str, np.ndarray], dtype: type) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {k: v.astype(dtype) for k, v in feed.items()})[0]


@pytest.mark.parametrize("name", SERVED_MODELS)
def test_miniature_engine_graphs(name: str, tmp_path: Path) -> None:
    spec = mini_spec(name)
    model = prepared(name)
    precision = traits(spec.family).engine_precision  # the miniature spec's own default is fp32
    fp32 = tmp_path / "model.fp32.onnx"
    shutil.copyfile(model.onnx, fp32)
    low = export_onnx(spec, model.hf_dir, tmp_path / f"model.{precision.value}.onnx", ExportOptions(precision))

    graph = prepare_engine_graph(spec, low, engine_graph_path(low), precision)
    reference = prepare_engine_graph(spec, fp32, engine_graph_path(fp32), Precision.FP32)
    assert graph.signature == reference.signature == expected_signature(spec, "int32")

    plan = plan_batching(spec)
    tokenizer = parity_tokenizer(spec, model.hf_dir / "tokenizer.json", plan)
    batch = max(parity_batches(spec, tokenizer, parity_prompts(spec), plan), key=lambda b: len(b.indices))
    original = _run(fp32, batch.feed, np.int64)
    np.testing.assert_allclose(_run(reference.path, batch.feed, np.int32), original, atol=1e-6)
    if precision is Precision.FP16:
        vectors = _run(graph.path, batch.feed, np.int32)
        norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(original, axis=1)
        cosines = np.sum(vectors * original, axis=1) / norms
        assert np.all(np.isfinite(vectors)) and cosines.min() >= 0.999
