"""Sequence buckets: a TensorRT repository's preprocess pads each request to its bucket's bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.runtime.bucketing import bucket_length, pad_to_length
from instruct_embed.runtime.preprocess import Preprocessor
from instruct_embed.runtime.tokenization import TokenBatch
from tests.unit.test_preprocess import column
from tests.unit.test_tokenization import write_tokenizer

BUCKETS = (8, 16, 64)


@pytest.mark.parametrize(("length", "bound"), [(1, 8), (8, 8), (9, 16), (16, 16), (17, 64), (64, 64)])
def test_a_length_goes_to_the_smallest_bucket_that_holds_it(length: int, bound: int) -> None:
    assert bucket_length(length, BUCKETS) == bound


def test_a_length_beyond_the_last_bucket_is_refused() -> None:
    with pytest.raises(ValueError, match="65 tokens exceed the last sequence bucket"):
        bucket_length(65, BUCKETS)


def _batch() -> TokenBatch:
    ids = np.array([[2, 5, 6, 3], [2, 5, 3, 0]])
    mask = (np.arange(4) < np.array([[4], [3]])).astype(np.int64)
    return TokenBatch(ids, mask, np.zeros_like(ids), np.array([4, 3], dtype=np.int32), pool_mask=mask.copy())


@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_to_a_bucket_is_masked_and_keeps_every_real_token(side: str) -> None:
    batch = _batch()
    wide = pad_to_length(batch, 8, pad_id=0, padding_side=side)
    assert wide.input_ids.shape == wide.attention_mask.shape == wide.token_type_ids.shape == (2, 8)
    assert wide.pool_mask is not None and wide.pool_mask.shape == (2, 8)
    kept = slice(0, 4) if side == "right" else slice(4, 8)
    added = slice(4, 8) if side == "right" else slice(0, 4)
    assert np.array_equal(wide.input_ids[:, kept], batch.input_ids)
    assert np.array_equal(wide.attention_mask[:, kept], batch.attention_mask)
    assert not wide.attention_mask[:, added].any() and not wide.pool_mask[:, added].any()
    assert (wide.input_ids[:, added] == 0).all()
    assert wide.token_counts.tolist() == [4, 3]  # real tokens only


def test_a_batch_is_never_cut_to_fit() -> None:
    with pytest.raises(ValueError, match="cannot pad a batch of 4 positions down to 2"):
        pad_to_length(_batch(), 2, pad_id=0, padding_side="right")


def test_preprocess_pads_requests_to_their_bucket_so_requests_of_a_bucket_share_one_shape(tmp_path: Path) -> None:
    spec = get_spec("multilingual-e5-small")
    config = {**spec.runtime_config(), "encoder_inputs": ["input_ids", "attention_mask"], "max_length": 16}
    tokenizer = write_tokenizer(tmp_path / "t.json")
    plain = Preprocessor(config, tokenizer)
    bucketed = Preprocessor({**config, "sequence_buckets": [8, 16]}, tokenizer)
    short, longer = column(b"a"), column(b"a b c d e")
    widths = {text[0, 0]: bucketed(text, role=column(b"document"))["input_ids"].shape[1] for text in (short, longer)}
    own = {text[0, 0]: plain(text, role=column(b"document"))["input_ids"].shape[1] for text in (short, longer)}
    assert own[b"a"] < own[b"a b c d e"] <= 16  # without buckets each request has its own width
    assert widths == {b"a": 8, b"a b c d e": 8 if own[b"a b c d e"] <= 8 else 16}
    for text in (short, longer):
        ours, theirs = bucketed(text, role=column(b"query")), plain(text, role=column(b"query"))
        n = theirs["input_ids"].shape[1]
        assert np.array_equal(ours["input_ids"][:, :n], theirs["input_ids"])
        assert np.array_equal(ours["attention_mask"][:, :n], theirs["attention_mask"])
        assert not ours["attention_mask"][:, n:].any()
        assert np.array_equal(ours["TOKEN_COUNT"], theirs["TOKEN_COUNT"])
