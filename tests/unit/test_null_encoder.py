"""The null encoder: rendered without a graph, right shapes and dtypes, unit vectors, nothing computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.catalog.tensors import encoder_outputs
from instruct_embed.repository.configs import ServingOptions, encoder_config, ensemble_config
from instruct_embed.repository.render import ModelArtifacts, read_config, render_model
from instruct_embed.repository.targets import EncoderTarget
from instruct_embed.runtime.null_encoder import (
    OUTPUTS_PARAMETER,
    NullEncoder,
    NullOutput,
    outputs_from_parameter,
)

NULL = ServingOptions(target=EncoderTarget.NULL)


def _artifacts(tmp_path: Path) -> ModelArtifacts:
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    return ModelArtifacts(tokenizer, tmp_path / "never-read.onnx")  # the null encoder needs no graph


def test_render_writes_a_python_null_encoder_without_a_graph(tmp_path: Path) -> None:
    spec = get_spec("multilingual-e5-small")
    repo = tmp_path / "repo"
    folders = render_model(spec, _artifacts(tmp_path), repo, NULL)
    encoder_dir = folders[2]
    config = read_config(encoder_dir / "config.pbtxt")
    assert config.backend == "python"
    assert all(t.allow_ragged_batch for t in config.input)
    model_py = (encoder_dir / "1" / "model.py").read_text()
    assert "NullEncoder" in model_py
    assert (encoder_dir / "1" / "instruct_embed_runtime" / "null_encoder.py").exists()
    assert not list(encoder_dir.rglob("*.onnx"))
    # The preprocess step and the ensemble are the real ones: only the model is missing.
    assert (folders[1] / "1" / "tokenizer.json").exists()
    assert read_config(folders[0] / "config.pbtxt").platform == "ensemble"


@pytest.mark.parametrize("name", ["multilingual-e5-small", "bge-m3", "NV-Embed-v2"])
def test_parameter_names_the_real_encoders_outputs(name: str) -> None:
    spec = get_spec(name)
    config = encoder_config(spec, NULL)
    outputs = outputs_from_parameter(config.parameters[OUTPUTS_PARAMETER].string_value)
    assert [(o.name, o.dims, o.per_token) for o in outputs] == [
        (o.name, o.dims, o.per_token) for o in encoder_outputs(spec)
    ]
    assert {t.name: list(t.dims) for t in config.output} == {o.name: list(o.dims) for o in outputs}


def test_outputs_have_the_encoders_shapes_and_unit_vectors() -> None:
    encoder = NullEncoder(
        [
            NullOutput("embedding", (384,)),
            NullOutput("sparse_weights", (-1,), per_token=True),
            NullOutput("colbert_vectors", (-1, 384), per_token=True),
        ]
    )
    mask = np.ones((3, 7), dtype=np.int64)
    first, second = encoder.run_requests([{"attention_mask": mask}, {"attention_mask": mask[:1, :2]}])
    assert first["embedding"].shape == (3, 384) and first["embedding"].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first["embedding"], axis=1), 1.0)
    assert first["sparse_weights"].shape == (3, 7) and not first["sparse_weights"].any()
    assert first["colbert_vectors"].shape == (3, 7, 384)
    np.testing.assert_allclose(np.linalg.norm(first["colbert_vectors"], axis=2), 1.0)
    assert second["embedding"].shape == (1, 384) and second["colbert_vectors"].shape == (1, 2, 384)


def test_null_encoder_refuses_no_outputs() -> None:
    with pytest.raises(ValueError, match="at least one output"):
        NullEncoder([])


def test_response_cache_is_rendered_on_the_ensemble_only_when_asked() -> None:
    spec = get_spec("multilingual-e5-small")
    assert not ensemble_config(spec, ServingOptions()).response_cache.enable
    cached = ensemble_config(spec, ServingOptions(response_cache=True))
    assert cached.response_cache.enable
    assert not encoder_config(spec, ServingOptions(response_cache=True)).response_cache.enable


def test_ort_spinning_reaches_the_encoders_parameters() -> None:
    spec = get_spec("multilingual-e5-small")
    params = encoder_config(spec, ServingOptions(ort_allow_spinning=True)).parameters
    assert params["ort_allow_spinning"].string_value == "1"
    assert encoder_config(spec, ServingOptions()).parameters["ort_allow_spinning"].string_value == "0"
    assert json.loads(encoder_config(spec, NULL).parameters[OUTPUTS_PARAMETER].string_value)[0]["name"] == "embedding"
