"""The fp32 graph statically quantised to int8 (ONNX Runtime QDQ), with scales calibrated once from fixed texts.

Static, not dynamic: dynamic quantisation measures each activation's scale on the batch it is computing, so a
text's vector changes with the texts batched beside it; here every scale is a constant of the graph, measured once
on the calibration texts (export/calibration_texts.py, embedded as the server embeds them), so a row computes the
same alone and in any batch.

What is quantised: the MatMuls with a constant weight, per output channel, activations per tensor (min/max). The
MatMuls that narrow (more input features than output ones: the feed-forward output projections) stay fp32: their
inputs, after the activation function, carry outliers that one scale per tensor cannot hold (quantising them too
gave min cosine 0.83 against the fp32 reference on all-MiniLM-L6-v2, leaving them 0.97).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from instruct_embed.catalog import ModelSpec
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt
from instruct_embed.runtime.tokenization import PromptTokenizer

from .calibration_texts import CALIBRATION_DOCUMENTS, CALIBRATION_QUERIES

ROWS_PER_CALIBRATION_RUN = 8
# The int8 graph's own tolerance against the fp32 reference (min cosine over the validation texts): looser than
# half precision's 0.999, which is why int8 is opt-in (its retrieval cost is measured in benchmarks/scifact.md).
INT8_TOLERANCE = 0.95


def int8_graph_path(fp32_graph: Path) -> Path:
    return fp32_graph.with_name(fp32_graph.name.replace(".onnx", ".int8-static.onnx"))


def narrowing_matmuls(model: onnx.ModelProto) -> list[str]:
    """The MatMul nodes whose constant weight [K, N] has K > N: the feed-forward output projections."""
    weights = {init.name: init for init in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or len(node.input) < 2 or node.input[1] not in weights:
            continue
        shape = tuple(weights[node.input[1]].dims)
        if len(shape) == 2 and shape[0] > shape[1]:
            names.append(node.name)
    return names


def calibration_feeds(spec: ModelSpec, tokenizer: PromptTokenizer, input_names: list[str]) -> list[dict]:
    """The calibration queries (as queries) and documents (as documents), tokenised as the server does, padded to
    one length (the calibrator stacks its batches), in runs of ROWS_PER_CALIBRATION_RUN rows."""
    templates = PromptTemplates.from_config(spec.runtime_config())
    roles = [(t, "query") for t in CALIBRATION_QUERIES] + [(t, "document") for t in CALIBRATION_DOCUMENTS]
    prompts = [resolve_prompt(templates, text, role) for text, role in roles]
    full = tokenizer.encode(prompts).feed(input_names)
    step, rows = ROWS_PER_CALIBRATION_RUN, len(prompts)
    return [{name: np.ascontiguousarray(v[i : i + step]) for name, v in full.items()} for i in range(0, rows, step)]


def quantize_static_int8(spec: ModelSpec, tokenizer: PromptTokenizer, fp32_graph: Path, output: Path) -> Path:
    """Write the int8 graph of `fp32_graph` to `output` (QDQ format: ONNX Runtime fuses it into int8 kernels)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_names = [i.name for i in onnx.load(str(fp32_graph), load_external_data=False).graph.input]
    feeds = calibration_feeds(spec, tokenizer, input_names)

    class Feeds(CalibrationDataReader):
        def __init__(self) -> None:
            self.runs: Iterator[dict] = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.runs, None)

    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Shape inference and constant folding first, as ONNX Runtime's quantisation guide asks.
        quant_pre_process(str(fp32_graph), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(output),
            Feeds(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=narrowing_matmuls(onnx.load(str(prepared))),
            extra_options={"MatMulConstBOnly": True},
        )
    return output
