"""benchmarks/gpu_reference.py on the CPU: its pooling matches the served graphs' rules, and a smoke run of every
architecture produces the report the GPU plan reads. The speeds themselves need a CUDA GPU (measured there, never
asserted here)."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.gpu_reference import ARCHITECTURES, FixedHidden, embed, main, single_query_graphed
from instruct_embed.catalog.registry import get_spec


def test_mean_pooling_ignores_padded_positions():
    hidden = torch.tensor([[[3.0, 4.0], [100.0, -100.0]]])
    mask = torch.tensor([[1, 0]])
    vector = embed(FixedHidden(hidden), "bert", torch.zeros_like(mask), mask)
    torch.testing.assert_close(vector, torch.tensor([[0.6, 0.8]]))


def test_decoders_pool_the_last_position_and_normalise():
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    mask = torch.ones(1, 2, dtype=torch.long)
    for family in ("mistral", "qwen2"):
        torch.testing.assert_close(embed(FixedHidden(hidden), family, mask, mask), torch.tensor([[0.0, 1.0]]))


def test_smoke_run_reports_every_architecture(tmp_path):
    out = tmp_path / "report.json"
    report = main(["--smoke", "--device", "cpu", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert set(report["models"]) == {a.name for a in ARCHITECTURES}
    for name, result in report["models"].items():
        assert result["layers"] == 2, name
        assert result["single_query_ms_p50"] > 0
        assert result["queries_per_s_best"] == max(result["queries_per_s"].values())
        assert result["documents_per_s_best"] > 0


def test_unknown_architecture_names_the_known_ones(capsys):
    with pytest.raises(SystemExit):
        main(["--smoke", "--device", "cpu", "--models", "bert-base"])
    assert "e5-large-v2" in capsys.readouterr().err


def test_each_architecture_runs_in_its_catalog_precision():
    """The floor is measured in the precision the engine is built in (fp16, or bf16 where fp16 overflows)."""
    for arch in ARCHITECTURES:
        precision = get_spec(arch.name).default_precision.value
        assert {"fp16": torch.float16, "bf16": torch.bfloat16}[precision] == arch.dtype, arch.name


def test_a_model_that_cannot_be_graphed_reports_why(monkeypatch):
    def no_streams():
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "Stream", no_streams)
    result = single_query_graphed(FixedHidden(torch.zeros(1, 2, 4)), ARCHITECTURES[0], "cpu", repeats=1)
    assert result["single_query_ms_p50_cuda_graph"] is None
    assert result["cuda_graph_error"] == "RuntimeError: operation not permitted when stream is capturing"
