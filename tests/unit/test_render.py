"""Rendering: configs come from the spec, agree with each other, and a repository is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import get_spec, model_names
from instruct_embed.repository.configs import (
    ServingOptions,
    encoder_config,
    ensemble_config,
    postprocess_config,
    preprocess_config,
    step_names,
    triton_models,
)
from instruct_embed.repository.render import ModelArtifacts, read_config, render_model, runtime_differs
from instruct_embed.repository.targets import EncoderTarget
from instruct_embed.runtime.preprocess import SPEC_PARAMETER


def _names(tensors) -> dict[str, tuple[int, list[int]]]:
    return {t.name: (t.data_type, list(t.dims)) for t in tensors}


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("target", list(EncoderTarget))
def test_ensemble_wires_preprocess_outputs_to_encoder_inputs(name: str, target: EncoderTarget) -> None:
    spec = get_spec(name)
    options = ServingOptions(target=target)
    pre, enc, ens = preprocess_config(spec, options), encoder_config(spec, options), ensemble_config(spec, options)
    steps = ens.ensemble_scheduling.step
    assert [s.model_name for s in steps] == list(step_names(spec))
    assert [s.model_name for s in steps][:2] == [pre.name, enc.name]
    pre_outputs, enc_inputs = _names(pre.output), _names(enc.input)
    # Every tensor the encoder consumes is produced by the preprocess step with the same dtype and dims.
    for key, value in steps[1].input_map.items():
        produced = {v: k for k, v in steps[0].output_map.items()}[value]
        assert pre_outputs[produced] == enc_inputs[key]
    # EMBEDDING is as wide as the request asks (the postprocess step's Matryoshka cut).
    assert _names(ens.output)["EMBEDDING"] == (mc.TYPE_FP32, [-1])
    assert _names(enc.output)["embedding"] == (mc.TYPE_FP32, [spec.dim])
    # Every tensor the postprocess step consumes comes from an earlier step, with the same dtype and dims.
    post = {s.model_name: s for s in steps}[f"{spec.name}_postprocess"]
    produced = {v: (k, i) for i, step in enumerate(steps[:2]) for k, v in step.output_map.items()}
    for key, value in post.input_map.items():
        name, step = produced[value]
        assert _names((pre, enc)[step].output)[name][0] == _names(postprocess_config(spec, options).input)[key][0]
    assert ens.max_batch_size <= min(pre.max_batch_size, enc.max_batch_size)
    assert enc.HasField("dynamic_batching")


def test_public_contract_of_the_ensemble() -> None:
    ens = ensemble_config(get_spec("multilingual-e5-small"), ServingOptions())
    inputs = {t.name: t for t in ens.input}
    assert list(inputs) == [
        "TEXT",
        "ROLE",
        "TASK",
        "INSTRUCTION",
        "TRUNCATE",
        "INSTRUCTION_KIND",
        "CHUNK",
        "DIMENSIONS",
        "CHUNK_OVERLAP",
    ]
    assert not inputs["TEXT"].optional and all(inputs[n].optional for n in list(inputs)[1:])
    assert all(list(t.dims) == [1] for t in ens.input)
    integers = ("DIMENSIONS", "CHUNK_OVERLAP")
    assert all(t.data_type == mc.TYPE_STRING for t in ens.input if t.name not in integers)
    assert all(inputs[n].data_type == mc.TYPE_INT32 for n in integers)
    outputs = _names(ens.output)
    assert outputs["TOKEN_COUNT"] == (mc.TYPE_INT32, [1])
    assert outputs["CHUNK_TEXT"] == (mc.TYPE_INT32, [1])
    assert outputs["CHUNK_TOKENS"] == outputs["CHUNK_CHARS"] == (mc.TYPE_INT32, [2])
    # Uncalibrated: float and the sign bits; calibrated ranges add int8 and uint8, and the spec lists them.
    assert outputs["EMBEDDING_BINARY"] == (mc.TYPE_INT8, [-1]) and outputs["EMBEDDING_UBINARY"] == (mc.TYPE_UINT8, [-1])
    assert "EMBEDDING_INT8" not in outputs
    calibrated = ensemble_config(get_spec("multilingual-e5-small"), ServingOptions(), calibrated=True)
    assert _names(calibrated.output)["EMBEDDING_INT8"] == (mc.TYPE_INT8, [-1])
    assert _names(calibrated.output)["EMBEDDING_UINT8"] == (mc.TYPE_UINT8, [-1])
    listed = json.loads(calibrated.parameters[SPEC_PARAMETER].string_value)["embedding_types"]
    assert listed == ["float", "int8", "uint8", "binary", "ubinary"]


def test_spec_travels_in_the_config_parameters() -> None:
    spec = get_spec("e5-mistral-7b-instruct")
    carried = json.loads(ensemble_config(spec, ServingOptions()).parameters[SPEC_PARAMETER].string_value)
    assert carried["query_template"] == spec.query_template
    assert carried["tasks"]["sts"] == "Retrieve semantically similar text."
    assert carried["task_kinds"]["sts"] == "symmetric" and carried["task_kinds"]["scifact"] == "retrieval"
    assert carried["symmetric_template"] == spec.query_template


def test_target_decides_the_encoder_backend() -> None:
    spec = get_spec("e5-large-v2")
    assert encoder_config(spec, ServingOptions()).backend == "python"
    assert encoder_config(spec, ServingOptions(target=EncoderTarget.ONNXRUNTIME)).backend == "onnxruntime"
    assert encoder_config(spec, ServingOptions(target=EncoderTarget.TENSORRT)).platform == "tensorrt_plan"


def test_render_writes_a_complete_repository(tmp_path: Path) -> None:
    spec = get_spec("multilingual-e5-small")
    tokenizer = tmp_path / "tokenizer.json"
    tokenizer.write_text("{}")
    graph = tmp_path / "model.fp32.onnx"
    graph.write_bytes(b"onnx")
    (tmp_path / "model.fp32.onnx.data").write_bytes(b"weights")
    repo = tmp_path / "repo"
    folders = render_model(spec, ModelArtifacts(tokenizer, graph), repo)
    assert [f.name for f in folders] == [
        spec.name,
        f"{spec.name}_preprocess",
        f"{spec.name}_encoder",
        f"{spec.name}_postprocess",
    ]
    assert not (folders[-1] / "1" / "int8_ranges.json").exists(), "prepare measures ranges; none were given"
    pre = repo / f"{spec.name}_preprocess" / "1"
    assert (pre / "model.py").exists() and (pre / "tokenizer.json").exists()
    assert (pre / "instruct_embed_runtime" / "preprocess.py").exists()
    enc = repo / f"{spec.name}_encoder" / "1"
    assert (enc / "model.onnx").read_bytes() == b"onnx"
    assert (enc / "model.fp32.onnx.data").read_bytes() == b"weights"
    assert (repo / spec.name / "1").is_dir()
    for folder in folders:
        config = read_config(folder / "config.pbtxt")
        assert config.name == folder.name


def test_a_matryoshka_model_gets_a_postprocess_step_wired_after_the_encoder(tmp_path: Path) -> None:
    spec = get_spec("Qwen3-Embedding-0.6B")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    repo = tmp_path / "repo"
    folders = render_model(spec, ModelArtifacts(tmp_path / "tokenizer.json", tmp_path / "model.onnx"), repo)
    assert [f.name for f in folders] == list(triton_models(spec))
    assert triton_models(spec)[-1] == f"{spec.name}_postprocess"
    assert (folders[-1] / "1" / "instruct_embed_runtime" / "matryoshka.py").exists()
    ensemble = read_config(repo / spec.name / "config.pbtxt")
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == list(step_names(spec))
    embedding = next(o for o in ensemble.output if o.name == "EMBEDDING")
    assert list(embedding.dims) == [-1], "a request's width is the size it asked for"
    sizes = next(i for i in ensemble.input if i.name == "DIMENSIONS")
    assert sizes.optional and sizes.data_type == mc.TYPE_INT32
    pre, enc, post = ensemble.ensemble_scheduling.step
    assert pre.output_map["dimensions"] == post.input_map["dimensions"]
    assert pre.output_map["output_row"] == post.input_map["output_row"]
    assert enc.output_map["embedding"] == post.input_map["embedding"] != "EMBEDDING"
    assert post.output_map["EMBEDDING"] == "EMBEDDING"
    # Calibrated ranges travel into the postprocess step's folder, and its config serves int8.
    ranges = tmp_path / "ranges.json"
    ranges.write_text('{"widths": {}}')
    artifacts = ModelArtifacts(tmp_path / "tokenizer.json", tmp_path / "model.onnx", int8_ranges=ranges)
    calibrated = render_model(spec, artifacts, repo)
    assert (calibrated[-1] / "1" / "int8_ranges.json").read_text() == ranges.read_text()
    assert "EMBEDDING_INT8" in {o.name for o in read_config(calibrated[-1] / "config.pbtxt").output}


def test_a_runtime_copy_from_another_version_is_detected(tmp_path: Path) -> None:
    spec = get_spec("all-MiniLM-L6-v2")
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    repo = tmp_path / "repo"
    ensemble, preprocess, encoder, _ = render_model(
        spec, ModelArtifacts(tmp_path / "tokenizer.json", tmp_path / "model.onnx"), repo
    )
    assert not runtime_differs(preprocess) and not runtime_differs(encoder)
    (preprocess / "1" / "instruct_embed_runtime" / "__pycache__").mkdir()
    (preprocess / "1" / "instruct_embed_runtime" / "__pycache__" / "x.pyc").write_bytes(b"compiled")
    assert not runtime_differs(preprocess), "bytecode caches are not code"
    copy = encoder / "1" / "instruct_embed_runtime" / "cpu_encoder.py"
    copy.write_text(copy.read_text() + "\n# an older release\n")
    assert runtime_differs(encoder)
    assert not runtime_differs(ensemble), "the ensemble has no runtime code"
    assert not runtime_differs(tmp_path / "absent")


def test_runtime_package_imports_only_what_the_server_image_has() -> None:
    import ast

    allowed = {"numpy", "tokenizers", "onnxruntime", "openvino"}  # the last two only where the CPU encoder runs
    runtime = Path(__file__).resolve().parents[2] / "model_repository" / "runtime"
    for source in runtime.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {str(node.module).split(".")[0]}
            else:
                continue
            stdlib = {r for r in roots if r in __import__("sys").stdlib_module_names}
            assert roots - stdlib <= allowed, f"{source.name} imports {roots - stdlib - allowed}"
