"""The engine graph: int32 ids, fp32 norms and pooling, the spec's signature, same numbers in ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from instruct_embed.catalog import Family, Precision, get_spec, model_names
from instruct_embed.catalog.families import traits
from instruct_embed.export.tensorrt.engine_graph import EngineGraphError, engine_graph_path, prepare_engine_graph
from instruct_embed.export.tensorrt.parity import parity_prompts, parity_tokenizer
from instruct_embed.export.tensorrt.precision import (
    PrecisionError,
    fp32_island_problems,
    keep_norms_fp32,
    resolve_precision,
)
from instruct_embed.export.tensorrt.profiles import plan_batching
from instruct_embed.export.tensorrt.signature import expected_signature, read_signature
from tests.unit.tensorrt_support import TINY_MODEL, shared_tiny_home


@pytest.fixture(scope="module")
def tiny():
    return shared_tiny_home()


def _session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _feeds(paths, dtype):
    spec = get_spec(TINY_MODEL)
    tokenizer = parity_tokenizer(spec, paths.hf_dir / "tokenizer.json", plan_batching(spec))
    batch = tokenizer.encode(parity_prompts(spec))
    return {"input_ids": batch.input_ids.astype(dtype), "attention_mask": batch.attention_mask.astype(dtype)}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("name", model_names())
def test_every_family_default_precision_is_the_spec_default(name: str) -> None:
    spec = get_spec(name)
    assert resolve_precision(spec) is traits(spec.family).engine_precision is spec.default_precision
    assert resolve_precision(spec, Precision.FP32) is Precision.FP32
    if spec.family in (Family.MISTRAL, Family.QWEN2, Family.QWEN3, Family.NV_EMBED):
        with pytest.raises(PrecisionError, match="overflows in fp16"):
            resolve_precision(spec, Precision.FP16)


def test_raw_fp16_export_is_refused_until_its_layernorms_are_fp32(tiny) -> None:
    model = onnx.load(str(tiny.onnx_file("fp16")))
    problems = fp32_island_problems(model)
    assert len(problems) == 5 and all("LayerNormalization" in p for p in problems)  # embeddings + 2 per layer
    assert keep_norms_fp32(model) == 5
    assert fp32_island_problems(model) == []


def test_fp16_engine_graph_takes_int32_and_matches_fp32_in_onnx_runtime(tiny) -> None:
    spec = get_spec(TINY_MODEL)
    source = tiny.onnx_file("fp16")
    graph = prepare_engine_graph(spec, source, engine_graph_path(source), Precision.FP16)
    assert graph.path.name == "model.fp16.trt.onnx" and graph.norms_rewritten == 5
    # The signature read back from the written graph is exactly what the spec predicts for the engine.
    assert read_signature(graph.path) == expected_signature(spec, "int32") == graph.signature
    engine_feed, reference_feed = _feeds(tiny, np.int32), _feeds(tiny, np.int64)
    assert engine_feed["input_ids"].shape[1] > 100  # the long text is there
    fp16 = _session(graph.path).run(["embedding"], engine_feed)[0]
    fp32 = _session(tiny.onnx_file("fp32")).run(["embedding"], reference_feed)[0]
    assert np.all(np.isfinite(fp16))
    assert _cosines(fp16, fp32).min() >= 0.999


def test_fp32_engine_graph_is_the_same_function_with_int32_ids(tiny) -> None:
    spec = get_spec(TINY_MODEL)
    source = tiny.onnx_file("fp32")
    graph = prepare_engine_graph(spec, source, engine_graph_path(source), Precision.FP32)
    assert graph.norms_rewritten == 0
    retyped = _session(graph.path).run(["embedding"], _feeds(tiny, np.int32))[0]
    original = _session(source).run(["embedding"], _feeds(tiny, np.int64))[0]
    np.testing.assert_allclose(retyped, original, atol=1e-6)


def test_engine_graph_shares_the_external_weight_file(tiny, tmp_path) -> None:
    spec = get_spec(TINY_MODEL)
    source = tmp_path / "model.fp16.onnx"
    model = onnx.load(str(tiny.onnx_file("fp16")))
    onnx.save_model(model, str(source), save_as_external_data=True, location="model.fp16.onnx.data", size_threshold=0)
    graph = prepare_engine_graph(spec, source, engine_graph_path(source), Precision.FP16)
    written = onnx.load(str(graph.path), load_external_data=False)
    weights = [t for t in written.graph.initializer if t.data_type == TensorProto.FLOAT16]
    assert weights and all(t.data_location == TensorProto.EXTERNAL and not t.raw_data for t in weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.fp16.onnx", "model.fp16.onnx.data", graph.path.name]
    feed = _feeds(tiny, np.int32)
    external = _session(graph.path).run(["embedding"], feed)[0]
    own = tiny.onnx_file("fp16")
    prepared = prepare_engine_graph(spec, own, engine_graph_path(own), Precision.FP16)
    np.testing.assert_allclose(external, _session(prepared.path).run(["embedding"], feed)[0], atol=1e-6)


def test_engine_graph_must_sit_beside_its_source(tiny, tmp_path) -> None:
    with pytest.raises(EngineGraphError, match="beside its source"):
        prepare_engine_graph(get_spec(TINY_MODEL), tiny.onnx_file("fp16"), tmp_path / "x.onnx", Precision.FP16)


@pytest.mark.parametrize(("precision", "found"), [(Precision.FP32, "float16"), (Precision.BF16, "float16")])
def test_the_graph_must_hold_the_precision_asked_for(tiny, precision: Precision, found: str) -> None:
    source = tiny.onnx_file("fp16")
    with pytest.raises(EngineGraphError, match=f"holds {found} weights; a {precision.value} engine"):
        prepare_engine_graph(get_spec(TINY_MODEL), source, engine_graph_path(source), precision)


def test_a_graph_that_disagrees_with_the_spec_is_refused(tiny) -> None:
    source = tiny.onnx_file("fp32")
    with pytest.raises(EngineGraphError, match="extent 384 where 1024 is expected"):
        prepare_engine_graph(get_spec("e5-large-v2"), source, engine_graph_path(source), Precision.FP32)


def _value(name: str, elem: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _graph(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rmsnorm_mean_of_squares_must_be_fp32() -> None:
    two = helper.make_tensor("two", TensorProto.BFLOAT16, [], [2.0])
    nodes = [
        helper.make_node("Pow", ["x", "two"], ["sq"], name="pow"),
        helper.make_node("ReduceMean", ["sq"], ["mean"], name="rms_mean", axes=[-1]),
        helper.make_node("Cast", ["mean"], ["y"], name="up", to=TensorProto.FLOAT),
    ]
    model = _graph(
        nodes,
        [_value("x", TensorProto.BFLOAT16, ["b", "s", 8])],
        [_value("y", TensorProto.FLOAT, ["b", "s", 1])],
        [two],
    )
    assert fp32_island_problems(model) == ["RMSNorm mean of squares 'rms_mean' runs in 16 bits"]


def _pooling(nodes) -> onnx.ModelProto:
    return _graph(
        nodes, [_value("h", TensorProto.FLOAT16, ["b", "s", 4])], [_value("embedding", TensorProto.FLOAT, ["b", 4])]
    )


def test_pooling_after_the_upcast_passes() -> None:
    model = _pooling(
        [
            helper.make_node("Cast", ["h"], ["h32"], name="upcast", to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["h32"], ["embedding"], name="pool", axes=[1], keepdims=0),
        ]
    )
    assert fp32_island_problems(model) == []


def test_pooling_in_16_bits_is_caught_even_when_the_output_is_upcast() -> None:
    model = _pooling(
        [
            helper.make_node("ReduceMean", ["h"], ["pooled16"], name="pool", axes=[1], keepdims=0),
            helper.make_node("Cast", ["pooled16"], ["embedding"], name="late_upcast", to=TensorProto.FLOAT),
        ]
    )
    assert fp32_island_problems(model) == ["upcast 'late_upcast' comes after pooling (its input has rank 2)"]


def test_a_16_bit_detour_between_upcast_and_output_is_caught() -> None:
    model = _pooling(
        [
            helper.make_node("Cast", ["h"], ["h32"], name="upcast", to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["h32"], ["pooled"], name="pool", axes=[1], keepdims=0),
            helper.make_node("Cast", ["pooled"], ["pooled16"], name="down", to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["pooled16"], ["embedding"], name="up_again", to=TensorProto.FLOAT),
        ]
    )
    assert fp32_island_problems(model) == ["upcast 'up_again' comes after pooling (its input has rank 2)"]


def test_per_token_outputs_are_not_held_to_the_pooling_rule() -> None:
    model = _pooling(
        [
            helper.make_node("ReduceMean", ["h"], ["pooled16"], name="pool", axes=[1], keepdims=0),
            helper.make_node("Cast", ["pooled16"], ["embedding"], name="late_upcast", to=TensorProto.FLOAT),
        ]
    )
    assert fp32_island_problems(model, pooled_outputs=["other"]) == []
