"""The PyTorch reference: the model card's documented usage, written independently of the export path.

It tokenises with transformers' AutoTokenizer (not the server's tokenizer code) and pools with the cards'
own functions, so agreement with the served graph checks tokenisation, template and pooling together.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from instruct_embed.catalog import ModelSpec, Pooling

from .loading import load_encoder


def average_pool(last_hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The E5 cards' `average_pool`."""
    last_hidden = last_hidden_states.masked_fill(~attention_mask[..., None].bool(), 0.0)
    return last_hidden.sum(dim=1) / attention_mask.sum(dim=1)[..., None]


def last_token_pool(last_hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The e5-mistral / gte-Qwen2 cards' `last_token_pool` (handles left and right padding)."""
    left_padding = bool(attention_mask[:, -1].sum() == attention_mask.shape[0])
    if left_padding:
        return last_hidden_states[:, -1]
    sequence_lengths = attention_mask.sum(dim=1) - 1
    batch_size = last_hidden_states.shape[0]
    return last_hidden_states[torch.arange(batch_size, device=last_hidden_states.device), sequence_lengths]


class ReferenceEmbedder:
    """Embeds already-templated texts the way the model card does, in fp32 PyTorch."""

    def __init__(self, spec: ModelSpec, hf_dir: Path, trust_remote_code: bool = False) -> None:
        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        self.model = load_encoder(spec, hf_dir, trust_remote_code=trust_remote_code)

    def tokenize(self, texts: Sequence[str], padding_side: str = "right") -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = padding_side
        if self.spec.append_token is None:
            return dict(
                self.tokenizer(
                    list(texts),
                    max_length=self.spec.max_length,
                    padding=True,
                    truncation=True,
                    return_tensors="pt",
                )
            )
        # The decoder cards truncate to max_length - 1 and append the end token by hand.
        append_id = self.tokenizer.convert_tokens_to_ids(self.spec.append_token)
        batch = self.tokenizer(
            list(texts),
            max_length=self.spec.max_length - 1,
            padding=False,
            truncation=True,
            return_attention_mask=False,
        )
        batch["input_ids"] = [[*ids, append_id] for ids in batch["input_ids"]]
        return dict(self.tokenizer.pad(batch, padding=True, return_attention_mask=True, return_tensors="pt"))

    @torch.no_grad()
    def embed(self, texts: Sequence[str], padding_side: str = "right") -> np.ndarray:
        batch = self.tokenize(texts, padding_side)
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"]
        if self.spec.pooling is Pooling.MEAN:
            pooled = average_pool(hidden, mask)
        elif self.spec.pooling is Pooling.CLS:
            pooled = hidden[:, 0]
        elif self.spec.pooling is Pooling.LAST_TOKEN:
            pooled = last_token_pool(hidden, mask)
        else:
            raise NotImplementedError(f"{self.spec.name}: the {self.spec.pooling.value} oracle is family-specific")
        if self.spec.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.numpy()
