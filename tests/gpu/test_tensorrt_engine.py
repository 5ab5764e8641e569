"""The real thing: build a TensorRT plan of a tiny BERT, check parity against ONNX Runtime fp32, render the repository.

Runs only where the `tensorrt` package and a CUDA GPU are importable (the export image on a GPU machine); elsewhere
it skips with a reason naming exactly what is missing.
"""

from __future__ import annotations

import pytest

from instruct_embed.export.tensorrt.environment import missing_requirements
from instruct_embed.runtime.contract import ENCODER, step_name

MISSING = missing_requirements()
pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(bool(MISSING), reason="needs " + "; and ".join(MISSING)),
]


def test_build_parity_and_render_a_tiny_bert(tmp_path, monkeypatch) -> None:
    from instruct_embed.build_engine import build_and_render
    from instruct_embed.export.tensorrt.pipeline import EngineBuildOptions
    from instruct_embed.repository.render import read_config
    from tests.unit.tensorrt_support import TINY_MODEL, make_tiny_home

    make_tiny_home(tmp_path / "home")
    monkeypatch.setenv("INSTRUCT_EMBED_HOME", str(tmp_path / "home"))
    options = EngineBuildOptions(
        model=TINY_MODEL,
        max_batch_size=8,
        buckets=(32,),
        workspace_gib=1,
        opt_level=1,  # a quick build: this checks correctness, not speed
        timing_cache=tmp_path / "timing.cache",
        repository=tmp_path / "repository",
        instances_per_gpu=3,
    )
    outcome = build_and_render(options)
    assert outcome.engine is not None and outcome.engine.is_file()
    assert outcome.parity is not None and outcome.parity.min_cosine >= 0.999
    assert outcome.parity.min_batch_vs_single >= 0.999
    assert (tmp_path / "timing.cache").stat().st_size > 0
    encoder = read_config(tmp_path / "repository" / step_name(TINY_MODEL, ENCODER) / "config.pbtxt")
    assert list(encoder.cc_model_filenames.values()) == [outcome.engine.name]
    assert [group.count for group in encoder.instance_group] == [3]

    again = build_and_render(options)  # same inputs: the plan is reused, not rebuilt
    assert again.parity is None and again.engine == outcome.engine
