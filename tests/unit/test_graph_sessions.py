"""The CPU encoder's two runtimes: ONNX Runtime fp32 and OpenVINO bf16 answer alike; bad precisions are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.repository.configs import ServingOptions, encoder_config
from instruct_embed.runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings, RunStats
from instruct_embed.runtime.graph_sessions import (
    CpuPrecisionError,
    cpu_has_bf16,
    open_graph_session,
    require_bf16,
)
from tests.unit.test_sub_batching import request, tiny_graph

needs_bf16 = pytest.mark.skipif(
    not cpu_has_bf16(), reason="this CPU has no bf16 matrix units (AMX-BF16 / AVX512-BF16) for OpenVINO's bf16 path"
)


@needs_bf16
def test_bf16_session_finds_the_same_inputs_outputs_and_per_token_outputs(tmp_path: Path) -> None:
    path = tiny_graph(tmp_path / "t.onnx")
    fp32 = open_graph_session(path, "fp32", threads=1, allow_spinning=False)
    bf16 = open_graph_session(path, "bf16", threads=1, allow_spinning=False)
    assert bf16.input_names == fp32.input_names == ["input_ids", "attention_mask"]
    assert bf16.output_names == fp32.output_names == ["embedding", "per_token"]
    assert bf16.per_token_outputs == fp32.per_token_outputs == {"per_token"}


@needs_bf16
def test_bf16_encoder_re_batches_ragged_requests_like_the_fp32_one(tmp_path: Path) -> None:
    path = tiny_graph(tmp_path / "t.onnx")
    requests = [request([[1, 2, 3], [4]]), request([[5] * 9]), request([[6, 7], [8, 9, 10, 11], [12]])]
    settings = CpuEncoderSettings(token_budget=8, max_rows=2, intra_op_threads=1)
    fp32 = CpuEncoder(path, settings).run_requests(requests)
    stats = RunStats()
    bf16 = CpuEncoder(path, CpuEncoderSettings(**{**settings.__dict__, "precision": "bf16"})).run_requests(
        requests, stats
    )
    for a, b in zip(fp32, bf16, strict=True):
        # Small integer sums are exact in bf16 too: any difference would be a row mixed up or misplaced.
        assert np.array_equal(a["embedding"], b["embedding"])
        assert np.array_equal(a["per_token"], b["per_token"])
    assert stats.real_tokens == 20


@needs_bf16
def test_bf16_outputs_are_not_overwritten_by_the_next_run(tmp_path: Path) -> None:
    session = open_graph_session(tiny_graph(tmp_path / "t.onnx"), "bf16", threads=1, allow_spinning=False)
    first = session.run(request([[1, 2]]))["embedding"].copy()
    kept = session.run(request([[1, 2]]))["embedding"]
    session.run(request([[7, 7, 7]]))
    assert np.array_equal(kept, first)


def test_a_cpu_without_bf16_units_is_refused_with_what_to_do() -> None:
    with pytest.raises(CpuPrecisionError, match=r"AMX-BF16 or AVX512-BF16.*FP32, INT8.*serve with fp32"):
        require_bf16(["FP32", "INT8"])
    require_bf16(["FP32", "BF16"])  # no error


@pytest.mark.parametrize("precision", ["fp16", "int4", "BF16"])
def test_unknown_cpu_precisions_are_refused_listing_the_offered_ones(precision: str, tmp_path: Path) -> None:
    with pytest.raises(CpuPrecisionError, match=r"choose one of auto, fp32, bf16, int8"):
        ServingOptions(cpu_precision=precision)
    with pytest.raises(CpuPrecisionError, match=r"choose one of fp32, bf16, int8$"):
        open_graph_session(tiny_graph(tmp_path / "t.onnx"), precision, threads=1, allow_spinning=False)


def test_auto_is_a_request_the_encoder_never_computes_in(tmp_path: Path) -> None:
    with pytest.raises(CpuPrecisionError, match=r"'auto' is not offered"):
        open_graph_session(tiny_graph(tmp_path / "t.onnx"), "auto", threads=1, allow_spinning=False)
    rendered = encoder_config(get_spec("multilingual-e5-small"), ServingOptions()).parameters
    assert rendered["cpu_precision"].string_value == "fp32", "unresolved auto renders the reference precision"


@pytest.mark.parametrize("target", ["onnxruntime", "tensorrt", "null"])
def test_bf16_is_refused_for_targets_that_do_not_run_the_cpu_encoder(target: str) -> None:
    from instruct_embed.repository.targets import EncoderTarget

    with pytest.raises(CpuPrecisionError, match=rf"applies to the python_ort target .*not to {target}"):
        ServingOptions(target=EncoderTarget(target), cpu_precision="bf16")


def test_the_encoder_config_carries_the_cpu_precision_to_the_model() -> None:
    spec = get_spec("multilingual-e5-small")
    parameters = encoder_config(spec, ServingOptions(cpu_precision="bf16")).parameters
    assert parameters["cpu_precision"].string_value == "bf16"
    settings = CpuEncoderSettings.from_parameters({k: v.string_value for k, v in parameters.items()})
    assert settings.precision == "bf16"
    assert CpuEncoderSettings.from_parameters({}).precision == "fp32"


def test_bf16_serving_needs_an_fp32_graph(tmp_path: Path) -> None:
    from instruct_embed.catalog import Precision
    from instruct_embed.prepare import PrepareOptions, _validated_cpu_bf16

    options = PrepareOptions(precision=Precision.FP16, serving=ServingOptions(cpu_precision="bf16"))
    with pytest.raises(CpuPrecisionError, match=r"this graph is fp16: prepare it with --precision fp32"):
        _validated_cpu_bf16(tmp_path / "model.onnx", options, get_spec("multilingual-e5-small"), tmp_path)


def test_a_bf16_validation_failure_says_to_serve_fp32_and_caches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import instruct_embed.prepare as prepare
    from instruct_embed.export.validate import ValidationError

    def inaccurate(*args: object, **kwargs: object) -> None:
        assert kwargs["cpu_precision"] == "bf16"
        raise ValidationError("bge-m3: lexical weights differ by 1.08e-02 of the largest")

    monkeypatch.setattr(prepare, "validate_onnx", inaccurate)
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph")
    options = prepare.PrepareOptions(serving=ServingOptions(cpu_precision="bf16"))
    with pytest.raises(
        ValidationError, match=r"cpu_precision bf16 \(OpenVINO\) is not accurate enough: bge-m3.*serve fp32"
    ):
        prepare._validated_cpu_bf16(graph, options, get_spec("bge-m3"), tmp_path)
    assert not list(tmp_path.glob("*.validation.txt"))


def bf16_graph(path: Path) -> str:
    """embedding = float(bf16(input_ids) * bf16(2)): a bf16 op ONNX Runtime's CPU provider has no kernel for."""
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    out = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", "sequence"])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_bf16"], to=TensorProto.BFLOAT16),
        helper.make_node("Mul", ["ids_bf16", "two"], ["doubled"]),
        helper.make_node("Cast", ["doubled"], ["embedding"], to=TensorProto.FLOAT),
    ]
    # As raw bytes (bf16 2.0 = 0x4000), as torch's exporter writes initializers: OpenVINO 2026.4 reads a bf16 tensor
    # kept in int32_data as the integer 16384, a misreading that validation against the reference would catch.
    two = helper.make_tensor("two", TensorProto.BFLOAT16, [], np.array([0x4000], dtype="<u2").tobytes(), raw=True)
    graph = helper.make_graph(nodes, "bf16", [ids], [out], initializer=[two])
    import onnx

    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return str(path)


def test_a_bf16_graph_is_refused_with_both_reasons_where_neither_runtime_can_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import instruct_embed.export.validate as validate

    monkeypatch.setattr(validate, "cpu_has_bf16", lambda: False)
    path = Path(bf16_graph(tmp_path / "model.bf16.onnx"))
    with pytest.raises(
        validate.UnsupportedOnCpu, match=r"no bf16 kernels.*this CPU has no bf16 units.*model.bf16.onnx"
    ):
        validate.cpu_encoder_for(get_spec("multilingual-e5-small"), path, "fp32")


@needs_bf16
def test_a_bf16_graph_runs_on_openvino_for_validation(tmp_path: Path) -> None:
    import instruct_embed.export.validate as validate

    path = Path(bf16_graph(tmp_path / "model.bf16.onnx"))
    encoder = validate.cpu_encoder_for(get_spec("multilingual-e5-small"), path, "fp32")
    assert encoder.settings.precision == "bf16"
    ids = np.array([[1, 2, 3]], dtype=np.int64)
    assert np.array_equal(encoder.run({"input_ids": ids})["embedding"], 2.0 * ids)
