"""NV-Embed-v2's latent-attention pooling, ported from its published modeling code (modeling_nvembed.py).

The hub code is remote code written for an older transformers; this port keeps its module tree and parameter
names (``cross_attend_blocks.{0,1}``, ``latents``) so the real checkpoint's ``latent_attention_model.*`` tensors
load into it unchanged, and replaces einops and SDPA with plain ops that export to ONNX.

Direction matters: the token states are the *queries*; the trainable latent array [num_latents, latent_dim]
supplies keys and values. Then a GEGLU MLP, each block residual, and a mean over ``pool_mask`` (the attention
mask with the instruction tokens zeroed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LatentAttentionSettings:
    """``latent_attention_config`` of NV-Embed-v2's config.json (4096, 4096, 512 latents, 8 heads of 4096)."""

    num_latents_value: int
    num_cross_heads: int
    hidden_dim: int
    latent_dim: int
    cross_dim_head: int
    output_normalize: bool = True

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> LatentAttentionSettings:
        return cls(
            num_latents_value=int(config["num_latents_value"]),
            num_cross_heads=int(config["num_cross_heads"]),
            hidden_dim=int(config["hidden_dim"]),
            latent_dim=int(config["latent_dim"]),
            cross_dim_head=int(config["cross_dim_head"]),
            output_normalize=bool(config.get("output_normalize", True)),
        )


class PreNorm(nn.Module):
    """LayerNorm on the input (and on the context, when there is one), then `fn`."""

    def __init__(self, dim: int, fn: nn.Module, context_dim: int | None = None) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(context_dim) if context_dim is not None else None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if self.norm_context is not None:
            assert context is not None
            return self.fn(x, self.norm_context(context))
        return self.fn(x)


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gates = x.chunk(2, dim=-1)
        return x * nn.functional.gelu(gates)


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult * 2), GEGLU(), nn.Linear(dim * mult, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttention(nn.Module):
    """Multi-head attention from `x` [b, n, query_dim] to `context` [b, m, context_dim], no mask, no biases."""

    def __init__(self, query_dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, query_dim, bias=False)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.reshape(b, n, self.heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        q = self._split(self.to_q(x))
        k, v = (self._split(t) for t in self.to_kv(context).chunk(2, dim=-1))
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        out = torch.matmul(weights, v).transpose(1, 2)
        return self.to_out(out.reshape(x.shape[0], x.shape[1], -1))


class LatentAttentionModel(nn.Module):
    """Token states [b, n, hidden] -> refined states [b, n, latent_dim] (`refine`), or pooled [b, latent_dim]."""

    def __init__(self, settings: LatentAttentionSettings) -> None:
        super().__init__()
        s = settings
        self.settings = settings
        self.cross_attend_blocks = nn.ModuleList(
            [
                PreNorm(
                    s.latent_dim,
                    CrossAttention(s.latent_dim, s.hidden_dim, s.num_cross_heads, s.cross_dim_head),
                    context_dim=s.hidden_dim,
                ),
                PreNorm(s.latent_dim, FeedForward(s.latent_dim)),
            ]
        )
        self.latents = nn.Parameter(torch.randn(s.num_latents_value, s.latent_dim))

    def refine(self, hiddens: torch.Tensor) -> torch.Tensor:
        cross_attn, cross_ff = self.cross_attend_blocks
        latents = self.latents.unsqueeze(0).expand(hiddens.shape[0], -1, -1)
        hiddens = cross_attn(hiddens, latents) + hiddens
        return cross_ff(hiddens) + hiddens

    def forward(self, hiddens: torch.Tensor, pool_mask: torch.Tensor) -> torch.Tensor:
        """The published forward: refine, then the mean over `pool_mask` (normalised if the config says so)."""
        refined = self.refine(hiddens)
        weights = pool_mask.unsqueeze(-1).float()
        pooled = (refined * weights).sum(dim=1) / pool_mask.sum(dim=1, keepdim=True).float()
        if self.settings.output_normalize:
            pooled = nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled
