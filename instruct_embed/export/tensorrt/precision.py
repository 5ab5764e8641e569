"""Which precision each family is built in, and the fp32 islands a 16-bit graph must keep.

TensorRT builds strongly typed networks here (the FP16 builder flag is deprecated since TensorRT 10.12): every
tensor keeps the type the ONNX graph gives it. So precision is chosen by choosing which exported graph to feed
(model.fp16.onnx or model.bf16.onnx), and the numerically fragile parts are made fp32 *in the graph*:

- LayerNormalization nodes: torch exports them with 16-bit inputs and weights; `keep_norms_fp32` wraps each in
  Casts so the statistics are computed in fp32 (ONNX's stash_type alone is not honoured by every runtime).
- RMSNorm (Mistral, Qwen2): transformers already upcasts to fp32 before the mean of squares; checked, not changed.
- pooling and L2 normalisation: the export pools in fp32 (export/pooling.py); checked from the output backwards.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import onnx
from onnx import TensorProto, helper, shape_inference

from instruct_embed.catalog import ModelSpec, Precision
from instruct_embed.catalog.families import traits

SIXTEEN_BIT = frozenset({TensorProto.FLOAT16, TensorProto.BFLOAT16})
# Each family's default is in catalog/families.py: Qwen and Mistral activations overflow fp16's range (max 65504)
# in their later layers, so the decoder families are bf16 (same exponent range as fp32); encoders are fp16.


class PrecisionError(ValueError):
    """A precision the family cannot use, or a 16-bit graph whose norms or pooling are not fp32."""


def resolve_precision(spec: ModelSpec, requested: Precision | None = None) -> Precision:
    """The engine precision: `requested`, else the spec's default. fp16 for a decoder family raises."""
    precision = spec.default_precision if requested is None else requested
    if precision is Precision.FP16 and traits(spec.family).fp16_overflows:
        raise PrecisionError(
            f"{spec.name} ({spec.family.value}) overflows in fp16; build bf16 (its default) or fp32 instead"
        )
    return precision


def _tensor_info(model: onnx.ModelProto) -> tuple[dict[str, int], dict[str, int]]:
    """Element type and rank (where known) of every tensor, after shape inference."""
    graph = shape_inference.infer_shapes(model).graph
    values = (*graph.value_info, *graph.input, *graph.output)
    types = {v.name: v.type.tensor_type.elem_type for v in values}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in values if v.type.tensor_type.HasField("shape")}
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type
        ranks[tensor.name] = len(tensor.dims)
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    types[node.output[0]] = attribute.t.data_type
    return types, ranks


def _types(model: onnx.ModelProto) -> dict[str, int]:
    return _tensor_info(model)[0]


def _is_upcast(node: onnx.NodeProto, types: dict[str, int]) -> bool:
    """A Cast from a 16-bit tensor to fp32: where an fp32 island begins."""
    return (
        node.op_type == "Cast"
        and types.get(node.input[0]) in SIXTEEN_BIT
        and any(a.name == "to" and a.i == TensorProto.FLOAT for a in node.attribute)
    )


def fp32_island_problems(model: onnx.ModelProto, pooled_outputs: Sequence[str] | None = None) -> list[str]:
    """Where a graph computes norms or pooling below fp32; empty when it is safe to build strongly typed.

    Checks every LayerNormalization's input, every mean of squares (the RMSNorm pattern Pow(x, 2) -> ReduceMean),
    and every node between the graph outputs and the last upcast before them (pooling and normalisation). That
    upcast must take per-token states (rank >= 3): one applied after a reduction means the pooling ran in 16 bits.
    `pooled_outputs` names the outputs walked back from (default: all); per-token outputs need not be pooled.
    """
    types, ranks = _tensor_info(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    problems = []
    for node in model.graph.node:
        if node.op_type == "LayerNormalization" and types.get(node.input[0]) in SIXTEEN_BIT:
            problems.append(f"LayerNormalization {node.name!r} runs in 16 bits")
        if node.op_type == "ReduceMean":
            source = producers.get(node.input[0])
            if source is not None and source.op_type == "Pow" and types.get(node.input[0]) in SIXTEEN_BIT:
                problems.append(f"RMSNorm mean of squares {node.name!r} runs in 16 bits")
    queue = deque(o.name for o in model.graph.output if pooled_outputs is None or o.name in pooled_outputs)
    seen: set[str] = set()
    while queue:
        node = producers.get(queue.popleft())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if _is_upcast(node, types):
            rank = ranks.get(node.input[0])
            if rank is not None and rank < 3:
                problems.append(f"upcast {node.name!r} comes after pooling (its input has rank {rank})")
            continue
        if any(types.get(t) in SIXTEEN_BIT for t in (*node.input, *node.output) if t):
            problems.append(f"{node.op_type} {node.name!r} between the last upcast and the output runs in 16 bits")
            continue
        queue.extend(t for t in node.input if t)
    return problems


def require_fp32_islands(model: onnx.ModelProto, what: str, pooled_outputs: Sequence[str] | None = None) -> None:
    problems = fp32_island_problems(model, pooled_outputs)
    if problems:
        raise PrecisionError(f"{what}: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))


def _cast(source: str, target: str, to: int, name: str) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [target], name=name, to=to)


def keep_norms_fp32(model: onnx.ModelProto) -> int:
    """Rewrite, in place, each 16-bit LayerNormalization to run in fp32 between two Casts; returns how many.

    Scale and bias are cast too (TensorRT folds those constant Casts), so weights are neither copied nor read:
    this works on a graph loaded without its external data.
    """
    types = _types(model)
    rewritten: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        low = types.get(node.input[0]) if node.op_type == "LayerNormalization" else None
        if low not in SIXTEEN_BIT:
            rewritten.append(node)
            continue
        count += 1
        prefix = node.name or f"layernorm_{count}"
        inputs = []
        for index, source in enumerate(node.input):
            if not source:
                inputs.append(source)
                continue
            target = f"{source}/fp32_{prefix}_{index}"
            rewritten.append(_cast(source, target, TensorProto.FLOAT, f"{prefix}/cast_in_{index}"))
            inputs.append(target)
        output = node.output[0]
        fp32_output = f"{output}/fp32"
        outputs = [fp32_output, *node.output[1:]]
        norm = helper.make_node(node.op_type, inputs, outputs, name=node.name, domain=node.domain)
        norm.attribute.extend(node.attribute)
        rewritten.append(norm)
        rewritten.append(_cast(fp32_output, output, low, f"{prefix}/cast_out"))
    del model.graph.node[:]
    model.graph.node.extend(rewritten)
    return count


def sixteen_bit_tensors(model: onnx.ModelProto) -> Iterable[str]:
    """Names of 16-bit initializers: a 16-bit export has them, an fp32 export does not."""
    return (t.name for t in model.graph.initializer if t.data_type in SIXTEEN_BIT)
