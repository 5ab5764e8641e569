"""GPU repositories rendered for every seed model agree with the spec, the plan and the engine graph."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import Family, Precision, get_spec, model_names
from instruct_embed.catalog.tensors import encoder_input_names, encoder_outputs
from instruct_embed.export.tensorrt.engine_graph import engine_graph_path, prepare_engine_graph
from instruct_embed.export.tensorrt.profiles import plan_batching, profiles_for_plan
from instruct_embed.export.tensorrt.signature import expected_signature
from instruct_embed.repository.configs import triton_models
from instruct_embed.repository.render import ModelArtifacts, read_config
from instruct_embed.repository.tensorrt_config import OrtTensorRtOptions, ort_tensorrt_ep_config
from instruct_embed.repository.tensorrt_render import render_ort_tensorrt_ep_model, render_tensorrt_model
from instruct_embed.runtime.preprocess import SPEC_PARAMETER, Preprocessor
from tests.unit.tensorrt_support import TINY_MODEL, VOCAB_SIZE, shared_tiny_home, write_tiny_tokenizer

DECODERS = (Family.MISTRAL, Family.QWEN2, Family.QWEN3, Family.NV_EMBED)


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    return write_tiny_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def _placeholder_plan(folder: Path, name: str) -> Path:
    """Stands in for a built plan file: rendering only places it, nothing reads it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"placeholder: rendering test, not an engine")
    return path


def _render(spec, tokenizer_json: Path, repository: Path, buckets=()):
    plan = plan_batching(spec, buckets=buckets)
    signature = expected_signature(spec, "int32")
    profiles = profiles_for_plan(plan, signature.input_names)
    engines = {
        "8.0": _placeholder_plan(repository.parent / "engines", "model.sm80.plan"),
        "9.0": _placeholder_plan(repository.parent / "engines", "model.sm90.plan"),
    }
    folders = render_tensorrt_model(spec, tokenizer_json, engines, repository, plan, profiles, signature)
    return plan, profiles, folders


def _tensors(tensors) -> dict[str, tuple[int, list[int]]]:
    return {t.name: (t.data_type, list(t.dims)) for t in tensors}


@pytest.mark.parametrize("name", model_names())
def test_tensorrt_repository_is_complete_and_consistent(name: str, tokenizer_json: Path, tmp_path: Path) -> None:
    spec = get_spec(name)
    buckets = (512,) if spec.max_length > 1024 else ()
    plan, profiles, folders = _render(spec, tokenizer_json, tmp_path / "repo", buckets)
    ensemble_dir, preprocess_dir, encoder_dir = folders[:3]
    assert [f.name for f in folders] == list(triton_models(spec)), "the postprocess step too"
    ensemble = read_config(ensemble_dir / "config.pbtxt")
    preprocess = read_config(preprocess_dir / "config.pbtxt")
    encoder = read_config(encoder_dir / "config.pbtxt")

    # The encoder takes exactly the spec's inputs as int32 and returns the spec's outputs.
    inputs = encoder_input_names(spec)
    assert encoder.platform == "tensorrt_plan"
    assert _tensors(encoder.input) == {n: (mc.TYPE_INT32, [-1]) for n in inputs}
    assert _tensors(encoder.output) == {o.name: (mc.TYPE_FP32, list(o.dims)) for o in encoder_outputs(spec)}
    # The preprocess step produces them with the same dtype and dims, and the ensemble wires them through.
    produced = _tensors(preprocess.output)
    assert {n: produced[n] for n in inputs} == _tensors(encoder.input)
    encoder_step = ensemble.ensemble_scheduling.step[1]
    assert encoder_step.model_name == encoder.name and sorted(encoder_step.input_map) == sorted(inputs)
    # One batch limit everywhere; the tokenizer truncates where the last profile ends.
    assert ensemble.max_batch_size == preprocess.max_batch_size == encoder.max_batch_size == plan.max_batch_size
    for config in (preprocess, ensemble):
        assert json.loads(config.parameters[SPEC_PARAMETER].string_value)["max_length"] == plan.max_sequence
    assert json.loads(preprocess.parameters[SPEC_PARAMETER].string_value)["encoder_input_dtype"] == "int32"
    # Each request is padded to its bucket's bound, the upper end of one profile (Triton batches equal shapes).
    buckets = json.loads(preprocess.parameters[SPEC_PARAMETER].string_value)["sequence_buckets"]
    assert buckets == list(plan.buckets) == [high for _, high in plan.sequence_ranges]

    # Profiles: every instance group may use each of them, and together they cover the plan.
    (group,) = encoder.instance_group
    assert group.kind == mc.ModelInstanceGroup.KIND_GPU
    # Two per GPU: behind one busy instance, Triton's batcher (priorities and a queue bound on) can strand requests.
    assert group.count == 2
    assert list(group.profile) == [str(i) for i in range(len(profiles))]
    assert [p.sequence_range for p in profiles] == list(plan.sequence_ranges)
    assert plan.sequence_ranges[0][0] == 1 and plan.sequence_ranges[-1][1] == plan.max_sequence
    assert all(p.batch_range == (1, plan.max_batch_size) for p in profiles)

    # One plan per GPU architecture, each present in the version folder.
    assert dict(encoder.cc_model_filenames) == {"8.0": "model.sm80.plan", "9.0": "model.sm90.plan"}
    for filename in encoder.cc_model_filenames.values():
        assert (encoder_dir / "1" / filename).is_file()
    assert (preprocess_dir / "1" / "tokenizer.json").is_file()

    batching = encoder.dynamic_batching
    assert list(batching.preferred_batch_size) == list(plan.preferred_batch_sizes)
    assert set(batching.preferred_batch_size) <= set(range(1, plan.max_batch_size + 1))
    assert batching.default_queue_policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert batching.default_queue_policy.max_queue_size == 8 * plan.max_batch_size
    # Queries (priority 1) overtake documents at the encoder on the GPU as on the CPU; the preprocess step keeps a
    # plain batcher (no priorities, no queue policy), so that Triton prefetches and never strands a request there.
    assert (batching.priority_levels, batching.default_priority_level) == (2, 2)
    assert preprocess.dynamic_batching.priority_levels == 0
    assert not preprocess.dynamic_batching.HasField("default_queue_policy")

    # Warmup: real ids at both ends of every profile, mask of ones, files of exactly one sample each.
    corners = set()
    for warmup in encoder.model_warmup:
        assert set(warmup.inputs) == set(inputs)
        lengths = {tuple(entry.dims) for entry in warmup.inputs.values()}
        assert len(lengths) == 1
        (length,) = lengths.pop()
        corners.add((warmup.batch_size, length))
        arrays = {}
        for input_name, entry in warmup.inputs.items():
            assert entry.data_type == mc.TYPE_INT32
            raw = (encoder_dir / "warmup" / entry.input_data_file).read_bytes()
            assert len(raw) == 4 * length
            arrays[input_name] = np.frombuffer(raw, dtype="<i4")
        assert arrays["attention_mask"].tolist() == [1] * length
        assert arrays["input_ids"].min() >= 0 and arrays["input_ids"].max() < VOCAB_SIZE
        assert len(set(arrays["input_ids"].tolist())) > 2  # real text, not one repeated id
    for low, high in plan.sequence_ranges:
        assert (plan.max_batch_size, high) in corners
        assert any(batch == 1 and low <= length <= high for batch, length in corners)


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "e5-mistral-7b-instruct", "NV-Embed-v2"])
def test_rendered_preprocess_emits_int32_truncated_at_the_engine_limit(name, tokenizer_json, tmp_path) -> None:
    spec = get_spec(name)
    plan, _, (_, preprocess_dir, _, _) = _render(spec, tokenizer_json, tmp_path / "repo")
    config = read_config(preprocess_dir / "config.pbtxt")
    as_triton_passes_it = json_format.MessageToDict(config, preserving_proto_field_name=True)
    preprocessor = Preprocessor.from_model_dir(as_triton_passes_it, preprocess_dir / "1")
    text = np.array([[b"short"], [" ".join(["protein"] * 10_000).encode()]], dtype=object)
    outputs = preprocessor(text)
    inputs = list(encoder_input_names(spec))
    assert list(outputs)[: len(inputs)] == inputs and "TOKEN_COUNT" in outputs
    for name_ in encoder_input_names(spec):
        assert outputs[name_].dtype == np.int32
        assert outputs[name_].shape == (2, plan.max_sequence)
    assert outputs["TOKEN_COUNT"].dtype == np.int32


def test_config_from_the_real_engine_graph_equals_the_one_from_the_spec(tokenizer_json, tmp_path) -> None:
    tiny = shared_tiny_home()
    spec = get_spec(TINY_MODEL)
    source = tiny.onnx_file("fp16")
    graph = prepare_engine_graph(spec, source, engine_graph_path(source), Precision.FP16)
    plan = plan_batching(spec, buckets=(64,))
    profiles = profiles_for_plan(plan, graph.signature.input_names)
    engines = {"9.0": _placeholder_plan(tmp_path / "engines", "model.sm90.plan")}
    from_graph = render_tensorrt_model(spec, tokenizer_json, engines, tmp_path / "a", plan, profiles, graph.signature)
    from_spec = render_tensorrt_model(
        spec, tokenizer_json, engines, tmp_path / "b", plan, profiles, expected_signature(spec)
    )
    for a, b in zip(from_graph, from_spec, strict=True):
        assert (a / "config.pbtxt").read_text() == (b / "config.pbtxt").read_text()


def test_missing_engines_are_refused(tokenizer_json, tmp_path) -> None:
    spec = get_spec("e5-large-v2")
    plan = plan_batching(spec)
    signature = expected_signature(spec)
    with pytest.raises(ValueError, match="build-engine"):
        render_tensorrt_model(
            spec, tokenizer_json, {}, tmp_path, plan, profiles_for_plan(plan, signature.input_names), signature
        )


@pytest.mark.parametrize("name", model_names())
def test_onnxruntime_tensorrt_ep_config(name: str) -> None:
    spec = get_spec(name)
    plan = plan_batching(spec)
    config = ort_tensorrt_ep_config(spec, plan, encoder_input_names(spec))
    assert config.backend == "onnxruntime" and config.max_batch_size == plan.max_batch_size
    assert config.dynamic_batching.priority_levels == 2
    assert list(config.dynamic_batching.preferred_batch_size) == list(plan.preferred_batch_sizes)
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    parameters = dict(accelerator.parameters)
    expected = "FP32" if spec.family in DECODERS else "FP16"
    assert parameters["precision_mode"] == expected
    assert ("trt_layer_norm_fp32_fallback" in parameters) == (expected == "FP16")
    first = encoder_input_names(spec)[0]
    assert f"{first}:{plan.max_batch_size}x{plan.max_sequence}" in parameters["trt_profile_max_shapes"]
    assert f"{first}:1x1" in parameters["trt_profile_min_shapes"]
    if spec.family in DECODERS:
        with pytest.raises(ValueError, match="overflows in fp16"):
            ort_tensorrt_ep_config(spec, plan, encoder_input_names(spec), ep=OrtTensorRtOptions(precision_mode="FP16"))


def test_onnxruntime_tensorrt_ep_repository_keeps_int64_ids(tokenizer_json, tmp_path) -> None:
    tiny = shared_tiny_home()
    spec = get_spec(TINY_MODEL)
    plan = plan_batching(spec, max_batch_size=16)
    artifacts = ModelArtifacts(tokenizer_json, tiny.onnx_file("fp32"))
    _, preprocess_dir, encoder_dir, _ = render_ort_tensorrt_ep_model(
        spec, artifacts, tmp_path, plan, encoder_input_names(spec)
    )
    encoder = read_config(encoder_dir / "config.pbtxt")
    preprocess = read_config(preprocess_dir / "config.pbtxt")
    assert _tensors(encoder.input) == {n: (mc.TYPE_INT64, [-1]) for n in encoder_input_names(spec)}
    assert {n: _tensors(preprocess.output)[n] for n in encoder_input_names(spec)} == _tensors(encoder.input)
    assert (encoder_dir / "1" / "model.onnx").is_file()
    assert {w.inputs["input_ids"].data_type for w in encoder.model_warmup} == {mc.TYPE_INT64}
    for warmup in encoder.model_warmup:
        raw = (encoder_dir / "warmup" / warmup.inputs["attention_mask"].input_data_file).read_bytes()
        assert np.frombuffer(raw, dtype="<i8").min() == 1
