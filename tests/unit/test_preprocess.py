"""The preprocess step without Triton: request arrays in, encoder tensors out, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.preprocess import Preprocessor
from tests.unit.test_tokenization import write_tokenizer


@pytest.fixture()
def preprocessor(tmp_path: Path) -> Preprocessor:
    config = {**get_spec("multilingual-e5-small").runtime_config(), "encoder_inputs": ["input_ids", "attention_mask"]}
    return Preprocessor(config, write_tokenizer(tmp_path / "t.json"))


def column(*values: bytes) -> np.ndarray:
    return np.array([[v] for v in values], dtype=object)


def test_outputs_are_the_encoder_inputs_and_token_counts(preprocessor: Preprocessor) -> None:
    out = preprocessor(column(b"a b", b"a"), role=column(b"query", b"document"))
    steps = {"dimensions", "output_row"}  # for the postprocess step
    assert (
        set(out) == {"input_ids", "attention_mask", "TOKEN_COUNT", "CHUNK_TEXT", "CHUNK_TOKENS", "CHUNK_CHARS"} | steps
    )
    assert out["input_ids"].dtype == np.int64 and out["TOKEN_COUNT"].dtype == np.int32
    assert out["TOKEN_COUNT"].shape == (2, 1)
    # Not chunked: each row is its own output row and its text, with no spans.
    assert out["output_row"].reshape(-1).tolist() == out["CHUNK_TEXT"].reshape(-1).tolist() == [0, 1]
    assert (out["CHUNK_TOKENS"] == -1).all() and (out["CHUNK_CHARS"] == -1).all()


def test_invalid_utf8_names_the_row(preprocessor: Preprocessor) -> None:
    with pytest.raises(RequestError, match="TEXT row 1 is not valid UTF-8"):
        preprocessor(column(b"ok", b"\xff\xfe"))


def test_role_rows_must_match_text_rows(preprocessor: Preprocessor) -> None:
    with pytest.raises(RequestError, match="ROLE has 1 rows but TEXT has 2"):
        preprocessor(column(b"a", b"b"), role=column(b"query"))


def test_empty_request_is_refused(preprocessor: Preprocessor) -> None:
    with pytest.raises(RequestError, match="at least one text"):
        preprocessor(np.zeros((0, 1), dtype=object))


def test_unknown_role_is_refused(preprocessor: Preprocessor) -> None:
    with pytest.raises(RequestError, match="unknown ROLE"):
        preprocessor(column(b"a"), role=column(b"passage"))
