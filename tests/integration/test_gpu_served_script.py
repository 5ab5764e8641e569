"""benchmarks/gpu_served.py, the one-shot GPU measurement, run here end to end on CPU tensors (--smoke: two-layer
models of both sizes' classes, a few texts): random weights written, the cuda target and the null encoder served by
the real local Triton, the eager-PyTorch floor and sentence-transformers beside them. On a GPU host the same code
runs at full size (benchmarks/gpu_served.sh)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_served
from tests.integration.test_server_parity import mixed_texts

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_smoke_run_measures_every_row(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is installed by make setup (dev)")
    texts = mixed_texts(40)
    gpu_served.pack_models(tmp_path / "pack", 0, {"queries": texts[:30], "documents": texts * 2})
    out = tmp_path / "gpu_served.json"
    argv = ["run", "--pack", str(tmp_path / "pack"), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    assert gpu_served.main([*argv, "--smoke", "--device", "cpu", "--repeats", "1"]) == 0
    results = json.loads(out.read_text())
    assert results["texts"] == {"queries": 30, "documents": 40}  # --smoke keeps the first 40
    for sized in gpu_served.SMOKE:
        row = results[sized.model]
        for where in ("served", "null_encoder_ceiling"):
            assert row[where]["online_queries_per_s"] > 0 and row[where]["bulk_documents_per_s"] > 0
            assert row[where]["query_p95_ms_under_bulk"] > 0
        assert row["eager_pytorch_documents_per_s"] > 0 and row["sentence_transformers_documents_per_s"] > 0
        assert row["served_bulk_vs_eager"] == pytest.approx(
            row["served"]["bulk_documents_per_s"] / row["eager_pytorch_documents_per_s"]
        )
    # Random weights in the family's class, written once, and the cuda target's repository rendered from them.
    assert (tmp_path / "work" / "models" / "e5-mistral-7b-instruct" / "model.safetensors").is_file()
    assert (tmp_path / "work" / "repository-cuda" / "e5-large-v2_encoder" / "1" / "hf" / "config.json").is_file()
