"""BGE-M3: one XLM-RoBERTa pass, three outputs (dense, sparse lexical weights, ColBERT multi-vectors).

Follows FlagEmbedding's ``BGEM3FlagModel``:
- dense: the CLS state, L2-normalised;
- sparse: ``relu(sparse_linear(h))`` per token; special tokens (CLS, EOS, PAD, UNK) and padding weigh 0.
  The reduction to {token id: max weight} is left to the client (`lexical_weights`), since its size varies;
- ColBERT: ``normalize(colbert_linear(h[:, 1:]))`` with padding zeroed. The graph returns it aligned with the
  input tokens: row 0 (CLS, which ColBERT skips) and padding rows are zero, so FlagEmbedding's vectors for a
  text of n tokens are ``colbert_vectors[1:n]``.

The heads ship beside the encoder as ``sparse_linear`` / ``colbert_linear`` state dicts; safetensors files are
preferred, and the hub's ``.pt`` files are read with ``torch.load(weights_only=True)`` (tensors only, no code).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

HEADS = ("sparse_linear", "colbert_linear")
# FlagEmbedding's `unused_tokens`: never given a lexical weight.
SPECIAL_TOKEN_KEYS = ("cls_token", "eos_token", "pad_token", "unk_token")


def load_head(hf_dir: Path, name: str, hidden: int, out_features: int | None = None) -> nn.Linear:
    """The Linear head `name` from `name`.safetensors or `name`.pt in `hf_dir`. Raises FileNotFoundError."""
    for suffix in (".safetensors", ".pt"):
        path = hf_dir / f"{name}{suffix}"
        if path.exists():
            state = load_file(str(path)) if suffix == ".safetensors" else torch.load(path, weights_only=True)
            break
    else:
        raise FileNotFoundError(f"{hf_dir} has no {name}.safetensors or {name}.pt (BGE-M3's {name} head)")
    weight = state["weight"]
    head = nn.Linear(hidden, out_features or weight.shape[0])
    head.load_state_dict(state)
    return head


def special_token_ids(hf_dir: Path) -> list[int]:
    """Ids of CLS, EOS, PAD and UNK, named by tokenizer_config.json and looked up in tokenizer.json."""
    config = json.loads((hf_dir / "tokenizer_config.json").read_text())
    tokenizer = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
    ids = []
    for key in SPECIAL_TOKEN_KEYS:
        token = config.get(key)
        token = token.get("content") if isinstance(token, dict) else token
        if token is not None and tokenizer.token_to_id(token) is not None:
            ids.append(int(tokenizer.token_to_id(token)))
    return sorted(set(ids))


class BgeM3Graph(nn.Module):
    """(input_ids, attention_mask) int64 [batch, seq] -> embedding [batch, hidden], sparse_weights [batch, seq],
    colbert_vectors [batch, seq, hidden]; all fp32. Heads and pooling run in fp32 on the encoder's states."""

    special_ids: torch.Tensor

    def __init__(self, encoder: nn.Module, sparse: nn.Linear, colbert: nn.Linear, special_ids: list[int]) -> None:
        super().__init__()
        self.encoder = encoder
        self.sparse_linear = sparse.float()
        self.colbert_linear = colbert.float()
        self.register_buffer("special_ids", torch.tensor(special_ids, dtype=torch.int64), persistent=False)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        mask = attention_mask.to(hidden.dtype)
        dense = nn.functional.normalize(hidden[:, 0], p=2.0, dim=-1)
        special = torch.eq(input_ids.unsqueeze(-1), self.special_ids).any(dim=-1)
        weights = torch.relu(self.sparse_linear(hidden)).squeeze(-1) * mask
        sparse = weights.masked_fill(special, 0.0)
        colbert = self.colbert_linear(hidden[:, 1:]) * mask[:, 1:].unsqueeze(-1)
        colbert = nn.functional.normalize(colbert, p=2.0, dim=-1)
        colbert = torch.cat([torch.zeros_like(colbert[:, :1]), colbert], dim=1)
        return dense, sparse, colbert
