"""Which torch module becomes the ONNX graph, per family: the one place export dispatches on the spec.

- encoder families (BERT, XLM-R, ModernBERT), dense only: `DenseEmbeddingGraph` (CLS or mean pooling);
- XLM-R with sparse / ColBERT outputs (BGE-M3): `BgeM3Graph`;
- the other decoder families (Mistral, Qwen2, Qwen3): `LastTokenGraph`, causal or not as the checkpoint's
  config says;
- NV-Embed: `NVEmbedGraph` over the local port of its latent attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from transformers import AutoModel, PreTrainedModel

from instruct_embed.catalog import Family, Output, Precision
from instruct_embed.catalog.families import traits
from instruct_embed.catalog.spec import ModelSpec
from instruct_embed.catalog.tensors import SEQUENCE_AXIS, encoder_input_names, encoder_outputs

from .bge_m3 import BgeM3Graph, load_head, special_token_ids
from .decoder import LastTokenGraph
from .graph import DenseEmbeddingGraph
from .loading import TORCH_DTYPES, RemoteCodeRefused, load_encoder
from .masks import config_is_causal
from .nv_embed import NVEmbedGraph, NVEmbedPort


@dataclass
class ExportGraph:
    """A module ready for torch.onnx.export, with the names and dynamic axes of its tensors."""

    module: torch.nn.Module
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]


def _check_opt_in(spec: ModelSpec, trust_remote_code: bool) -> None:
    if spec.trust_remote_code and not trust_remote_code:
        raise RemoteCodeRefused(
            f"{spec.name} is published with modeling code in its Hugging Face repository; pass "
            "--trust-remote-code after reading that code"
        )


def load_decoder(
    spec: ModelSpec, hf_dir: Path, precision: Precision, trust_remote_code: bool, attention: str = "eager"
) -> PreTrainedModel:
    """The stock transformers decoder (MistralModel, Qwen2Model, Qwen3Model): never the repository's own code."""
    _check_opt_in(spec, trust_remote_code)
    model = AutoModel.from_pretrained(
        hf_dir, dtype=TORCH_DTYPES[precision], attn_implementation=attention, trust_remote_code=False
    )
    return cast(PreTrainedModel, model.eval())


def build_module(
    spec: ModelSpec, hf_dir: Path, precision: Precision, trust_remote_code: bool, attention: str = "eager"
) -> torch.nn.Module:
    """The family's graph module in `precision` (eval mode, on CPU). `attention`: transformers' implementation,
    "eager" for export (plain ONNX ops), "sdpa" where PyTorch serves the module itself (torch_session.py)."""
    if spec.family is Family.NV_EMBED:
        _check_opt_in(spec, trust_remote_code)
        return NVEmbedGraph(NVEmbedPort.from_folder(hf_dir, TORCH_DTYPES[precision], attention)).eval()
    if traits(spec.family).decoder:
        decoder = load_decoder(spec, hf_dir, precision, trust_remote_code, attention)
        causal = config_is_causal(decoder.config, default=not spec.bidirectional)
        return LastTokenGraph(decoder, causal, spec.normalize).eval()
    encoder = load_encoder(spec, hf_dir, precision, trust_remote_code, attention)
    if Output.SPARSE in spec.outputs or Output.COLBERT in spec.outputs:
        if set(spec.outputs) != set(Output):
            raise ValueError(f"{spec.name}: the BGE-M3 graph returns dense, sparse and colbert together")
        hidden = int(cast(PreTrainedModel, encoder).config.hidden_size)
        sparse = load_head(hf_dir, "sparse_linear", hidden)
        colbert = load_head(hf_dir, "colbert_linear", hidden)
        return BgeM3Graph(encoder, sparse, colbert, special_token_ids(hf_dir)).eval()
    return DenseEmbeddingGraph(encoder, spec).eval()


def build_export_graph(
    spec: ModelSpec, hf_dir: Path, precision: Precision = Precision.FP32, trust_remote_code: bool = False
) -> ExportGraph:
    inputs = encoder_input_names(spec)
    outputs = encoder_outputs(spec)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: SEQUENCE_AXIS} for name in inputs}
    for output in outputs:
        axes[output.name] = {0: "batch", 1: SEQUENCE_AXIS} if output.per_token else {0: "batch"}
    module = build_module(spec, hf_dir, precision, trust_remote_code)
    return ExportGraph(module, inputs, tuple(o.name for o in outputs), axes)
