"""Hugging Face encoder -> ONNX graph with pooling and normalisation inside, validated before it is kept."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from instruct_embed.catalog import ModelSpec, Precision

from .families import build_export_graph

OPSET = 17
# Protobuf cannot hold more than 2 GiB; above this the weights go to a side file.
EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 64 * 1024**2


@dataclass(frozen=True)
class ExportOptions:
    precision: Precision = Precision.FP32
    trust_remote_code: bool = False
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD
    device: str = "cpu"


def export_onnx(spec: ModelSpec, hf_dir: Path, out_path: Path, options: ExportOptions = ExportOptions()) -> Path:
    """Write `out_path` (and `out_path.name + '.data'` for large graphs). Does not validate: see validate.py.

    The graph's inputs are int64 [batch, sequence] tensors named by `encoder_input_names(spec)` (input_ids,
    attention_mask, and pool_mask for NV-Embed); its outputs are fp32 and named by `encoder_outputs(spec)`
    (`embedding` [batch, dim], and for BGE-M3 `sparse_weights` / `colbert_vectors`), whatever the precision of
    the encoder. 16-bit graphs are traced on `options.device` (a GPU where one exists).
    """
    graph = build_export_graph(spec, hf_dir, options.precision, options.trust_remote_code)
    module = graph.module.to(options.device)
    sample = torch.tensor([[5, 6, 7, 8], [5, 6, 7, 8]], dtype=torch.int64, device=options.device)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.int64, device=options.device)
    feeds = {"input_ids": sample, "attention_mask": mask, "pool_mask": torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]])}
    args = tuple(feeds[name].to(options.device) for name in graph.input_names)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as scratch:
        raw = Path(scratch) / "raw.onnx"
        with torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(raw),
                dynamo=False,
                input_names=list(graph.input_names),
                output_names=list(graph.output_names),
                dynamic_axes=graph.dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
            )
        save_onnx(onnx.load(str(raw)), out_path, options.external_data_threshold)
    return out_path


def save_onnx(model: onnx.ModelProto, out_path: Path, external_data_threshold: int = EXTERNAL_DATA_THRESHOLD) -> None:
    """Save `model`, moving its weights to `<name>.data` beside it when it is larger than the threshold."""
    data_file = out_path.with_name(out_path.name + ".data")
    if data_file.exists():
        data_file.unlink()
    large = _weights_size(model) > external_data_threshold
    tmp = out_path.with_name(out_path.name + ".tmp")
    onnx.save_model(
        model,
        str(tmp),
        save_as_external_data=large,
        all_tensors_to_one_file=True,
        location=data_file.name if large else None,
        size_threshold=1024,
    )
    os.replace(tmp, out_path)


def _weights_size(model: onnx.ModelProto) -> int:
    # ModelProto.ByteSize() cannot count past 2 GiB, which is exactly the case to detect.
    return sum(len(t.raw_data) or t.ByteSize() for t in model.graph.initializer)
