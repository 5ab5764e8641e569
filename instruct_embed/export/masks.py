"""4D additive attention masks for decoder classes, so causality is a choice the export makes explicitly.

transformers 4.57 passes a ``[batch, 1, query, key]`` float mask straight to the attention layers: zeros where
a query may look and a large negative number where it may not. Building that mask here (rather than letting
the model build its causal one) is how a decoder class such as ``Qwen2Model`` or ``MistralModel`` runs
bidirectionally, as gte-Qwen2 (``is_causal: false``) and NV-Embed-v2 were trained.
"""

from __future__ import annotations

import torch


def decoder_attention_mask(attention_mask: torch.Tensor, causal: bool, dtype: torch.dtype) -> torch.Tensor:
    """[batch, seq] 0/1 mask -> [batch, 1, seq, seq] additive mask in `dtype`.

    Padding keys are always masked. With `causal`, a query also ignores keys after it. A query row that would
    see nothing (left padding under a causal mask) gets the large negative everywhere, which softmax turns into
    a uniform row rather than NaN.
    """
    keys = attention_mask.bool()[:, None, None, :]
    if causal:
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        keys = keys & (positions[None, :] <= positions[:, None])[None, None, :, :]
    else:
        keys = keys.expand(-1, -1, attention_mask.shape[1], -1)
    zeros = torch.zeros(keys.shape, dtype=dtype, device=attention_mask.device)
    return zeros.masked_fill(~keys, torch.finfo(dtype).min)


def config_is_causal(config: object, default: bool = True) -> bool:
    """The checkpoint's own word on causality: ``is_causal`` in config.json (gte-Qwen2 sets it to false)."""
    value = getattr(config, "is_causal", None)
    return default if value is None else bool(value)
