"""Sequence buckets for engines that batch only equal shapes (TensorRT in Triton).

Triton's dynamic batcher merges requests only when their tensors have the same shape, unless the model takes
ragged batches (the CPU encoder does; a TensorRT plan does not). A preprocess step that pads each request to its
own longest text would leave a TensorRT encoder almost nothing to batch. Padding every request up to the upper
bound of its length bucket instead gives all requests of a bucket one shape, so they batch together, and that
shape lies inside the engine profile built for the bucket (instruct_embed/export/tensorrt/profiles.py). The
padding is masked, so it changes no vector; its cost is bounded by the bucket's width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .tokenization import TokenBatch


def bucket_length(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket bound >= `length` (`buckets` ascending)."""
    for bound in buckets:
        if length <= bound:
            return bound
    raise ValueError(f"{length} tokens exceed the last sequence bucket ({buckets[-1]})")


def pad_to_length(batch: TokenBatch, length: int, pad_id: int, padding_side: str) -> TokenBatch:
    """`batch` widened to `length` positions with masked padding on its padding side."""
    extra = length - batch.input_ids.shape[1]
    if extra < 0:
        raise ValueError(f"cannot pad a batch of {batch.input_ids.shape[1]} positions down to {length}")
    if extra == 0:
        return batch
    width = ((0, 0), (0, extra)) if padding_side == "right" else ((0, 0), (extra, 0))

    def widen(array: np.ndarray, value: int) -> np.ndarray:
        return np.pad(array, width, constant_values=value)

    return replace(
        batch,
        input_ids=widen(batch.input_ids, pad_id),
        attention_mask=widen(batch.attention_mask, 0),
        token_type_ids=widen(batch.token_type_ids, 0),
        pool_mask=None if batch.pool_mask is None else widen(batch.pool_mask, 0),
    )
