"""The I/O signature of an encoder graph (names, dtypes, dims without the batch axis), read or expected.

The Triton config is rendered from a signature, and tests compare the signature read from the real ONNX graph
with the one the spec predicts, so a graph and its config cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, shape_inference

from instruct_embed.catalog import ModelSpec
from instruct_embed.catalog.tensors import encoder_input_names, encoder_outputs

ONNX_DTYPES: dict[int, str] = {
    TensorProto.INT32: "int32",
    TensorProto.INT64: "int64",
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.BFLOAT16: "bfloat16",
    TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class TensorSignature:
    """One graph input or output. `dims` excludes the batch axis; -1 marks a dynamic axis."""

    name: str
    dtype: str  # numpy-style name: int32, int64, float32, ...
    dims: tuple[int, ...]


@dataclass(frozen=True)
class GraphSignature:
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def output(self, name: str) -> TensorSignature:
        for tensor in self.outputs:
            if tensor.name == name:
                return tensor
        raise KeyError(f"the graph has no output {name!r}; it has {[t.name for t in self.outputs]}")


def _tensor(value: onnx.ValueInfoProto) -> TensorSignature:
    tensor_type = value.type.tensor_type
    dtype = ONNX_DTYPES.get(tensor_type.elem_type, f"onnx:{tensor_type.elem_type}")
    dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)
    return TensorSignature(value.name, dtype, dims[1:])


def read_signature(model: onnx.ModelProto | Path) -> GraphSignature:
    """Inputs and outputs of a batched graph after shape inference (weights are not loaded from a path)."""
    if isinstance(model, Path):
        model = onnx.load(str(model), load_external_data=False)
    inferred = shape_inference.infer_shapes(model)
    initializers = {t.name for t in inferred.graph.initializer}
    inputs = tuple(_tensor(v) for v in inferred.graph.input if v.name not in initializers)
    return GraphSignature(inputs, tuple(_tensor(v) for v in inferred.graph.output))


def expected_signature(spec: ModelSpec, id_dtype: str = "int32") -> GraphSignature:
    """What the spec says the encoder graph takes and returns, with integer inputs of `id_dtype`."""
    inputs = tuple(TensorSignature(name, id_dtype, (-1,)) for name in encoder_input_names(spec))
    outputs = tuple(TensorSignature(o.name, "float32", o.dims) for o in encoder_outputs(spec))
    return GraphSignature(inputs, outputs)


def signature_mismatches(graph: GraphSignature, expected: GraphSignature) -> list[str]:
    """Human-readable differences; a -1 in the graph matches any expected extent of that axis."""
    problems = []
    if graph.input_names != expected.input_names:
        problems.append(f"inputs {list(graph.input_names)} != expected {list(expected.input_names)}")
    for want in (*expected.inputs, *expected.outputs):
        found = {t.name: t for t in (*graph.inputs, *graph.outputs)}.get(want.name)
        if found is None:
            problems.append(f"missing tensor {want.name!r}")
            continue
        if found.dtype != want.dtype:
            problems.append(f"{want.name}: dtype {found.dtype} != expected {want.dtype}")
        dims_agree = len(found.dims) == len(want.dims) and all(
            f == w or f == -1 for f, w in zip(found.dims, want.dims, strict=True)
        )
        if not dims_agree:
            problems.append(f"{want.name}: dims {list(found.dims)} != expected {list(want.dims)}")
    return problems
