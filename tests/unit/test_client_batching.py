"""The SDK's bulk path: length-sorted requests, order restored."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_embed.client.batching import plan_chunks, reassemble
from instruct_embed.client.request import EncodeRequest, Item, texts_of


@given(st.lists(st.text(max_size=30), max_size=200), st.integers(min_value=1, max_value=17))
def test_chunks_cover_every_text_once_and_reassemble_in_order(texts: list[str], max_batch: int) -> None:
    chunks = plan_chunks(texts, max_batch)
    positions = [p for c in chunks for p in c.positions]
    assert sorted(positions) == list(range(len(texts)))
    assert all(len(c.positions) <= max_batch for c in chunks)
    if texts:
        # Each "result" row carries its own position: reassembly must put row i at index i.
        results = [np.array([[p] for p in c.positions], dtype=np.int64) for c in chunks]
        assert reassemble(chunks, results, len(texts))[:, 0].tolist() == list(range(len(texts)))


def test_chunks_group_similar_lengths() -> None:
    texts = ["a" * n for n in (50, 1, 40, 2, 30, 3)]
    chunks = plan_chunks(texts, 3)
    assert [sorted(len(texts[p]) for p in c.positions) for c in chunks] == [[1, 2, 3], [30, 40, 50]]


def test_a_short_answer_is_an_error() -> None:
    chunks = plan_chunks(["a", "b"], 2)
    with pytest.raises(ValueError, match="came back with 1 rows"):
        reassemble(chunks, [np.zeros((1, 4))], 2)


def test_items_and_strings_are_accepted() -> None:
    assert texts_of([Item("a"), "b"]) == ["a", "b"]
    assert texts_of("single") == ["single"]
    with pytest.raises(TypeError, match="str or Item"):
        texts_of([1])  # type: ignore[list-item]


def test_is_query_picks_the_role_unless_a_role_is_given() -> None:
    assert EncodeRequest.make(is_query=True).role == "query"
    assert EncodeRequest.make().role == "document"
    assert EncodeRequest.make(is_query=True, role="raw").role == "raw"
