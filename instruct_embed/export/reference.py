"""The PyTorch reference: the model card's documented usage, written independently of the export path.

It tokenises with transformers' AutoTokenizer (not the server's tokenizer code) and pools with the cards'
own functions, so agreement with the served graph checks tokenisation, template and pooling together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoTokenizer
from transformers.modeling_attn_mask_utils import _prepare_4d_attention_mask

from instruct_embed.catalog import ModelSpec, Pooling
from instruct_embed.runtime.prompting import Prompt

from .loading import load_encoder


@dataclass
class ReferenceOutput:
    """What an oracle computes for n prompts: always the dense vectors, and BGE-M3's other two outputs."""

    dense: np.ndarray  # float32 [n, dim]
    sparse: list[dict[int, float]] | None = None  # per text: {token id: max weight}
    colbert: list[np.ndarray] | None = None  # per text: [tokens - 1, dim], CLS skipped, unit rows


class Reference(Protocol):
    def embed_prompts(self, prompts: Sequence[Prompt]) -> ReferenceOutput: ...


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

    def _tokenizer_appends(self, token_id: int) -> bool:
        # A tokenizer whose post-processor already ends every text with the token (as the cards then rely on).
        return bool(self.tokenizer("a")["input_ids"][-1] == token_id)

    def tokenize(self, texts: Sequence[str], padding_side: str = "right") -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = padding_side
        append_id = (
            None if self.spec.append_token is None else self.tokenizer.convert_tokens_to_ids(self.spec.append_token)
        )
        if append_id is None or self._tokenizer_appends(append_id):
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
        mask = batch["attention_mask"]
        if self._bidirectional_decoder():
            # What gte-Qwen2's and NV-Embed's own modeling code do for is_causal=false: the 4D padding-only mask.
            dtype = next(self.model.parameters()).dtype
            batch = {**batch, "attention_mask": _prepare_4d_attention_mask(mask, dtype)}
        hidden = self.model(**batch).last_hidden_state.float()
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

    def embed_prompts(self, prompts: Sequence[Prompt]) -> ReferenceOutput:
        return ReferenceOutput(self.embed([p.full for p in prompts]))

    def _bidirectional_decoder(self) -> bool:
        """A stock transformers decoder class whose checkpoint says is_causal: false.

        Remote modeling code (the hub's own Qwen2Model for gte-Qwen2) handles the flag itself.
        """
        stock = type(self.model).__module__.startswith("transformers.")
        is_decoder = getattr(self.model.config, "model_type", "") in ("mistral", "qwen2")
        return stock and is_decoder and getattr(self.model.config, "is_causal", True) is False
