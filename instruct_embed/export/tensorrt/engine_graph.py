"""The ONNX graph TensorRT is fed: int32 token inputs, fp32 norms, checked before any build starts.

Ids are int32 at the engine boundary. TensorRT's native index type is int32, trtexec's and Polygraphy's data
loaders and Triton's tensorrt_plan backend then all agree on one dtype, and halving the id bytes costs nothing:
vocabularies (250k for XLM-R, 152k for Qwen2) and lengths fit int32 many times over. The export itself stays
int64 (what torch and ONNX Runtime expect): `with_int32_inputs` retypes the graph inputs to int32 and casts
them back to int64 right behind, so every original consumer sees exactly the tensor it saw before. The
preprocess step of a TensorRT repository emits int32 (see model_repository/tensorrt_config.py), so the ids
are int32 from the tokenizer to the engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper, shape_inference

from instruct_embed.catalog import ModelSpec, Precision
from instruct_embed.catalog.tensors import encoder_outputs

from .precision import SIXTEEN_BIT, keep_norms_fp32, require_fp32_islands
from .signature import GraphSignature, expected_signature, read_signature, signature_mismatches

INT_INPUTS = frozenset({TensorProto.INT64, TensorProto.INT32})


class EngineGraphError(RuntimeError):
    """The exported graph does not have the inputs, outputs or precision the engine needs."""


def with_int32_inputs(model: onnx.ModelProto) -> list[str]:
    """Retype the graph's int64 inputs to int32, in place, each cast back to int64 for its consumers.

    Returns the names retyped. Graph input names do not change, so configs and feeds keep their names.
    """
    retyped = []
    casts = []
    for value in model.graph.input:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != TensorProto.INT64:
            continue
        name = value.name
        wide = f"{name}/int64"
        for node in model.graph.node:
            for index, source in enumerate(node.input):
                if source == name:
                    node.input[index] = wide
        for output in model.graph.output:
            if output.name == name:
                raise EngineGraphError(f"input {name!r} is also a graph output; cannot retype it")
        tensor_type.elem_type = TensorProto.INT32
        casts.append(helper.make_node("Cast", [name], [wide], name=f"{name}/to_int64", to=TensorProto.INT64))
        retyped.append(name)
    for cast in reversed(casts):
        model.graph.node.insert(0, cast)
    return retyped


def fix_output_dims(model: onnx.ModelProto, spec_dims: dict[str, tuple[int, ...]]) -> None:
    """Write the spec's extents over symbolic non-batch axes of the named outputs, in place.

    torch leaves names like 'Divembedding_dim_1' on the embedding axis; TensorRT and the Triton config want the
    number. Where shape inference can tell the real extent, it must equal the spec's (EngineGraphError if not).
    """
    inferred = {o.name: o for o in shape_inference.infer_shapes(model).graph.output}
    for output in model.graph.output:
        dims = spec_dims.get(output.name)
        if dims is None:
            continue
        axes = output.type.tensor_type.shape.dim[1:]
        known = inferred[output.name].type.tensor_type.shape.dim[1:]
        if len(axes) != len(dims):
            raise EngineGraphError(f"output {output.name!r} has rank {len(axes) + 1}, expected {len(dims) + 1}")
        for axis, real, want in zip(axes, known, dims, strict=True):
            if real.HasField("dim_value") and want != -1 and real.dim_value != want:
                raise EngineGraphError(f"output {output.name!r} has extent {real.dim_value} where {want} is expected")
            if want != -1:
                axis.dim_value = want


@dataclass(frozen=True)
class EngineGraph:
    path: Path
    signature: GraphSignature
    norms_rewritten: int


def prepare_engine_graph(spec: ModelSpec, source: Path, target: Path, precision: Precision) -> EngineGraph:
    """Write `target` (beside `source`, sharing its external weight file) ready for a strongly typed build.

    Raises EngineGraphError when the graph's precision is not `precision`, its I/O disagree with the spec, or
    (via PrecisionError) its norms or pooling are not fp32.
    """
    if target.parent.resolve() != source.parent.resolve():
        raise EngineGraphError("the engine graph must sit beside its source: it reuses the source's weight file")
    model = onnx.load(str(source), load_external_data=False)
    found = {t.data_type for t in model.graph.initializer} & SIXTEEN_BIT
    wanted = {Precision.FP16: {TensorProto.FLOAT16}, Precision.BF16: {TensorProto.BFLOAT16}}.get(precision, set())
    if found != wanted:
        names = sorted(TensorProto.DataType.Name(t).lower() for t in found) or ["fp32 only"]
        raise EngineGraphError(
            f"{source.name} holds {', '.join(names)} weights; a {precision.value} engine was asked for"
        )
    rewritten = keep_norms_fp32(model)
    with_int32_inputs(model)
    expected = expected_signature(spec, "int32")
    fix_output_dims(model, {t.name: t.dims for t in expected.outputs})
    pooled = [o.name for o in encoder_outputs(spec) if not o.per_token]
    require_fp32_islands(model, f"{spec.name} {precision.value} graph", pooled)
    signature = read_signature(model)
    problems = signature_mismatches(signature, expected)
    if problems:
        raise EngineGraphError(f"{spec.name}: the graph does not match the spec: " + "; ".join(problems))
    tmp = target.with_name(target.name + ".tmp")
    # External weights keep their relative location, which resolves from the shared folder.
    onnx.save_model(model, str(tmp))
    os.replace(tmp, target)
    return EngineGraph(target, signature, rewritten)


def engine_graph_path(source: Path) -> Path:
    """model.fp16.onnx -> model.fp16.trt.onnx"""
    return source.with_name(source.name.removesuffix(".onnx") + ".trt.onnx")
