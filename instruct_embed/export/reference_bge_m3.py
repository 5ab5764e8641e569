"""BGE-M3's reference: FlagEmbedding's ``BGEM3FlagModel.encode`` written out in PyTorch.

dense = normalize(h[:, 0]); lexical weights = relu(sparse_linear(h)) reduced per text to {token id: max weight}
over tokens that are not CLS/EOS/PAD/UNK and weigh more than 0; ColBERT = normalize(colbert_linear(h[:, 1:])
* mask[:, 1:]), of which the first (tokens - 1) rows are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import torch
from transformers import AutoTokenizer, PreTrainedModel

from instruct_embed.catalog import ModelSpec
from instruct_embed.runtime.prompting import Prompt

from .bge_m3 import load_head
from .loading import load_encoder
from .reference import ReferenceOutput


class BgeM3Reference:
    def __init__(self, spec: ModelSpec, hf_dir: Path, trust_remote_code: bool = False) -> None:
        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(hf_dir)
        self.model = load_encoder(spec, hf_dir, trust_remote_code=trust_remote_code)
        hidden = int(cast(PreTrainedModel, self.model).config.hidden_size)
        self.sparse_linear = load_head(hf_dir, "sparse_linear", hidden)
        self.colbert_linear = load_head(hf_dir, "colbert_linear", hidden)
        t = self.tokenizer
        self.unused_tokens = {t.cls_token_id, t.eos_token_id, t.pad_token_id, t.unk_token_id}

    def _lexical(self, weights: torch.Tensor, ids: torch.Tensor) -> dict[int, float]:
        result: dict[int, float] = {}
        for w, idx in zip(weights.tolist(), ids.tolist(), strict=True):
            if idx not in self.unused_tokens and w > 0 and w > result.get(idx, 0.0):
                result[idx] = w
        return result

    @torch.no_grad()
    def embed_prompts(self, prompts: Sequence[Prompt]) -> ReferenceOutput:
        batch = self.tokenizer(
            [p.full for p in prompts],
            padding=True,
            truncation=True,
            max_length=self.spec.max_length,
            return_tensors="pt",
        )
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"]
        dense = torch.nn.functional.normalize(hidden[:, 0], dim=-1)
        token_weights = torch.relu(self.sparse_linear(hidden)).squeeze(-1)
        colbert = self.colbert_linear(hidden[:, 1:]) * mask[:, 1:][:, :, None].float()
        colbert = torch.nn.functional.normalize(colbert, dim=-1)
        sparse, vectors = [], []
        for row in range(len(prompts)):
            n = int(mask[row].sum())
            sparse.append(self._lexical(token_weights[row, :n], batch["input_ids"][row, :n]))
            vectors.append(colbert[row, : n - 1].numpy())
        return ReferenceOutput(dense.numpy(), sparse, vectors)
