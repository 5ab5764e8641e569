"""Decoder embedders with last-token pooling: e5-mistral (causal) and gte-Qwen2 (bidirectional).

Causality comes from the checkpoint: gte-Qwen2's config.json says ``is_causal: false``, e5-mistral's says
nothing (causal). The graph builds the 4D mask itself (see masks.py), so the stock transformers class serves
both and no remote modeling code runs.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from .masks import decoder_attention_mask
from .pooling import l2_normalize


class LastTokenGraph(nn.Module):
    """(input_ids, attention_mask) int64 [batch, seq], right-padded -> embedding fp32 [batch, hidden].

    Pools the state at ``attention_mask.sum(-1) - 1`` (the appended end token) in fp32, then L2-normalises.
    """

    def __init__(self, decoder: PreTrainedModel, causal: bool, normalize: bool = True) -> None:
        super().__init__()
        self.decoder = decoder
        self.causal = causal
        self.normalize = normalize

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        dtype = next(self.decoder.parameters()).dtype
        mask = decoder_attention_mask(attention_mask, self.causal, dtype)
        return self.decoder(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden_states(input_ids, attention_mask).float()
        last = (attention_mask.sum(dim=1) - 1).clamp(min=0)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return l2_normalize(pooled) if self.normalize else pooled
