"""`prepare --target tensorrt` never writes a config Triton would refuse: it exports and validates the graph that
build-engine builds from, and leaves rendering to build-engine (which renders from the plans that passed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.repository.configs import ServingOptions
from instruct_embed.repository.render import ModelArtifacts, render_model
from instruct_embed.repository.targets import EncoderTarget

pytestmark = pytest.mark.slow
MINILM = "all-MiniLM-L6-v2"


def test_prepare_for_tensorrt_exports_the_graph_and_renders_nothing(
    prepared_models: dict[str, object], tmp_path: Path
) -> None:
    from instruct_embed.prepare import PrepareOptions, prepare_model

    repository = tmp_path / "repository"
    options = PrepareOptions(repository=repository, serving=ServingOptions(target=EncoderTarget.TENSORRT))
    prepared = prepare_model(MINILM, options)
    assert prepared.repository is None and not repository.exists(), "no half-made tensorrt_plan repository"
    assert prepared.onnx.is_file() and prepared.onnx.name == "model.fp32.onnx", "the plain graph build-engine reads"
    assert "cosine" in prepared.validation
    assert json.loads(prepared.to_json())["repository"] is None


def test_the_renderer_refuses_a_tensorrt_encoder_from_an_onnx_graph(tmp_path: Path) -> None:
    spec = get_spec(MINILM)
    artifacts = ModelArtifacts(tmp_path / "tokenizer.json", tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="build-engine"):
        render_model(spec, artifacts, tmp_path / "repository", ServingOptions(target=EncoderTarget.TENSORRT))
    assert not (tmp_path / "repository").exists()
