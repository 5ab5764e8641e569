"""NV-Embed-v2's reference: its model card's `encode`, written out in PyTorch over the local port.

Per the card (``model.encode(texts, instruction=query_prefix)``): the text is ``instruction + text + eos``,
tokenised with BOS; ``pool_mask`` is the attention mask with its first ``len(tokenizer.tokenize(instruction))``
positions zeroed (BOS included, as the card counts); the Mistral stack attends bidirectionally (its
``_prepare_4d_attention_mask``); the latent-attention layer pools over ``pool_mask``; the card then
L2-normalises. One deliberate difference: the card adds ``</s>`` as text before truncating, so an over-long
text loses it; here it is appended after truncating to ``max_length - 1``, the spec's rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoTokenizer
from transformers.modeling_attn_mask_utils import _prepare_4d_attention_mask

from instruct_embed.catalog import ModelSpec
from instruct_embed.runtime.prompting import Prompt

from .loading import RemoteCodeRefused
from .nv_embed import NVEmbedPort
from .reference import ReferenceOutput


class NVEmbedReference:
    def __init__(self, spec: ModelSpec, hf_dir: Path, trust_remote_code: bool = False) -> None:
        if spec.trust_remote_code and not trust_remote_code:
            raise RemoteCodeRefused(f"{spec.name} needs --trust-remote-code")
        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        self.tokenizer.padding_side = "right"
        self.model = NVEmbedPort.from_folder(hf_dir)

    def tokenize(self, prompts: Sequence[Prompt]) -> dict[str, torch.Tensor]:
        """input_ids, attention_mask and pool_mask [n, seq], right-padded."""
        eos = self.tokenizer.eos_token_id
        rows = self.tokenizer(
            [p.prefix + p.text for p in prompts], max_length=self.spec.max_length - 1, truncation=True
        )["input_ids"]
        batch = self.tokenizer.pad({"input_ids": [[*r, eos] for r in rows]}, padding=True, return_tensors="pt")
        pool_mask = batch["attention_mask"].clone()
        for row, prompt in enumerate(prompts):
            if prompt.prefix:
                pool_mask[row, : len(self.tokenizer.tokenize(prompt.prefix))] = 0
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "pool_mask": pool_mask}

    @torch.no_grad()
    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = _prepare_4d_attention_mask(attention_mask, self.model.embedding_model.embed_tokens.weight.dtype)
        return self.model.embedding_model(input_ids=input_ids, attention_mask=mask).last_hidden_state

    @torch.no_grad()
    def embed_prompts(self, prompts: Sequence[Prompt]) -> ReferenceOutput:
        batch = self.tokenize(prompts)
        hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"])
        pooled = self.model.latent_attention_model(hidden, batch["pool_mask"])
        return ReferenceOutput(torch.nn.functional.normalize(pooled.float(), p=2, dim=-1).numpy())
