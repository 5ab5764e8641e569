"""NV-Embed-v2: a bidirectional Mistral, then latent-attention pooling over ``pool_mask``, then L2 norm.

`NVEmbedPort` has the module tree of the hub's ``NVEmbedModel`` (``embedding_model``, ``latent_attention_model``)
so a checkpoint's safetensors load into it by name. Its forward is never the hub's: that one wraps everything
in ``torch.autocast`` (which would leak into a traced graph) and relies on a transformers API that 4.57 no
longer has. Here the Mistral stack is transformers' own ``MistralModel`` fed a bidirectional 4D mask.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import MistralConfig, MistralModel

from .latent_attention import LatentAttentionModel, LatentAttentionSettings
from .masks import decoder_attention_mask
from .pooling import l2_normalize

# Keys of text_config that describe the hub classes rather than the architecture.
_NOT_ARCHITECTURE = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version")


class NVEmbedPort(nn.Module):
    def __init__(self, text_config: MistralConfig, latent: LatentAttentionSettings) -> None:
        super().__init__()
        self.embedding_model = MistralModel(text_config)
        self.latent_attention_model = LatentAttentionModel(latent)

    @classmethod
    def from_folder(cls, hf_dir: Path, dtype: torch.dtype = torch.float32, attention: str = "eager") -> NVEmbedPort:
        """Build from config.json (``text_config``, ``latent_attention_config``) and load every safetensors file.

        Raises KeyError when the folder's tensors do not match the module tree exactly (missing or extra names).
        """
        config = json.loads((hf_dir / "config.json").read_text())
        text = {k: v for k, v in config["text_config"].items() if k not in _NOT_ARCHITECTURE}
        text_config = MistralConfig(**text)
        text_config._attn_implementation = attention
        model = cls(text_config, LatentAttentionSettings.from_dict(config["latent_attention_config"]))
        state: dict[str, torch.Tensor] = {}
        for file in sorted(hf_dir.glob("*.safetensors")):
            state.update(load_file(str(file)))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise KeyError(
                f"{hf_dir}: NV-Embed tensors do not match: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        return model.to(dtype).eval()

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The bidirectional Mistral's last hidden state [batch, seq, hidden]."""
        dtype = self.embedding_model.embed_tokens.weight.dtype
        mask = decoder_attention_mask(attention_mask, causal=False, dtype=dtype)
        return self.embedding_model(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state


class NVEmbedGraph(nn.Module):
    """(input_ids, attention_mask, pool_mask) int64 [batch, seq] -> embedding fp32 [batch, latent_dim], unit length.

    The latent attention runs in the model's precision; the masked mean and the normalisation in fp32.
    """

    def __init__(self, model: NVEmbedPort) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model.hidden_states(input_ids, attention_mask)
        refined = self.model.latent_attention_model.refine(hidden).float()
        weights = pool_mask.to(refined.dtype).unsqueeze(-1)
        pooled = (refined * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return l2_normalize(pooled)


def nv_embed_config(text_config: MistralConfig, latent: LatentAttentionSettings) -> dict[str, Any]:
    """A config.json in the hub's layout (without ``auto_map``: nothing here is remote code)."""
    return {
        "architectures": ["NVEmbedModel"],
        "model_type": "nvembed",
        "padding_side": "right",
        "is_mask_instruction": True,
        "add_eos": True,
        "add_pad_token": True,
        "mask_type": "b",
        "text_config": {**text_config.to_dict(), "model_type": "bidir_mistral", "architectures": ["MistralModel"]},
        "latent_attention_config": {"model_type": "latent_attention", **latent.__dict__},
    }
