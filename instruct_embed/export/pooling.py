"""Pooling and normalisation as torch code that exports cleanly to ONNX (kept in fp32)."""

from __future__ import annotations

import torch

from instruct_embed.catalog import Pooling


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Reduce [batch, seq, hidden] states to [batch, hidden] with a [batch, seq] 0/1 mask.

    Runs in fp32 whatever the encoder's precision, so 16-bit graphs do not lose the sum.
    """
    hidden = hidden.float()
    if pooling is Pooling.CLS:
        return hidden[:, 0]
    if pooling is Pooling.MEAN:
        weights = mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if pooling is Pooling.LAST_TOKEN:
        # Right padding: the last real token (the appended EOS) sits at mask.sum - 1.
        last = (mask.sum(dim=1) - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling {pooling.value!r} needs a model-specific head; not available in the generic wrapper")


def l2_normalize(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors.float(), p=2.0, dim=-1)
