"""The module that becomes the ONNX graph: encoder, pooling and normalisation in one forward."""

from __future__ import annotations

import torch

from instruct_embed.catalog import ModelSpec

from .pooling import l2_normalize, pool

# Embedders see one segment, so token_type_ids would always be zeros: the graph leaves them to the model's
# own default and takes two inputs only.
INPUT_NAMES = ("input_ids", "attention_mask")
DENSE_OUTPUT = "embedding"


class DenseEmbeddingGraph(torch.nn.Module):
    """(input_ids, attention_mask) int64 [batch, seq] -> embedding fp32 [batch, dim], pooled and normalised."""

    def __init__(self, encoder: torch.nn.Module, spec: ModelSpec) -> None:
        super().__init__()
        self.encoder = encoder
        self.spec = spec

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.spec.pooling)
        return l2_normalize(pooled) if self.spec.normalize else pooled.float()
