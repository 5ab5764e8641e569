"""Fuzzing the preprocess step: any bytes, texts, roles, tasks or modes raise RequestError or give well-formed tensors.

A malformed request must fail alone with a message (RequestError becomes that request's INVALID_ARGUMENT), never
with another exception that would fail the whole batch it was scheduled with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruct_embed.catalog import get_spec
from instruct_embed.catalog.tensors import encoder_input_names
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.preprocess import Preprocessor
from tests.unit.test_tokenization import WORDS, write_tokenizer

# A template-free model, an instruction model with an appended end token, NV-Embed (pool_mask) left-padded.
MODELS = {
    "multilingual-e5-small": {},
    "e5-mistral-7b-instruct": {},
    "NV-Embed-v2": {"padding_side": "left"},
}
MAX_LENGTH = 9  # small, so that truncation happens often


def preprocessor_for(name: str, tokenizer_json: str, **overrides: Any) -> Preprocessor:
    spec = get_spec(name)
    config = {
        **spec.runtime_config(),
        "encoder_inputs": list(encoder_input_names(spec)),
        "max_length": MAX_LENGTH,
        **overrides,
    }
    return Preprocessor(config, tokenizer_json)


@pytest.fixture(scope="module", params=list(MODELS))
def preprocessor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Preprocessor]:
    path = write_tokenizer(tmp_path_factory.mktemp("tok") / "t.json")
    yield preprocessor_for(request.param, path, **MODELS[request.param])


def vocabulary_text() -> st.SearchStrategy[bytes]:
    """Texts the tiny vocabulary knows (so tokens are counted), with the template words mixed in."""
    words = st.lists(st.sampled_from([*WORDS[5:], "Instruct", "Query", "query", "passage", "\n"]), max_size=20)
    return words.map(lambda w: " ".join(w).encode())


ANY_TEXT = st.one_of(vocabulary_text(), st.binary(max_size=80), st.text(max_size=80).map(str.encode))
ROLE = st.one_of(st.sampled_from([b"query", b"document", b"raw", b""]), st.binary(max_size=8))
TASK = st.one_of(st.sampled_from([b"web_search", b"scifact", b"sts", b""]), st.binary(max_size=8))
INSTRUCTION = st.one_of(st.sampled_from([b"Given a claim, find documents", b""]), ANY_TEXT)
TRUNCATE = st.one_of(st.sampled_from([b"end", b"start", b"none", b""]), st.binary(max_size=6))


@st.composite
def requests(draw: st.DrawFn) -> dict[str, np.ndarray | None]:
    texts = draw(st.lists(ANY_TEXT, min_size=0, max_size=6))
    n = len(texts)

    def column(values: st.SearchStrategy[bytes]) -> np.ndarray | None:
        if draw(st.booleans()):
            return None
        rows = draw(st.one_of(st.just(n), st.integers(0, 7)))  # sometimes a row count that does not match
        one = draw(st.booleans())  # the SDK sends one value for every row
        value = draw(values)
        return _column([value] * rows if one else [draw(values) for _ in range(rows)])

    return {
        "text": _column(texts),
        "role": column(ROLE),
        "task": column(TASK),
        "instruction": column(INSTRUCTION),
        "truncate": column(TRUNCATE),
    }


def _column(values: list[bytes]) -> np.ndarray:
    array = np.empty((len(values), 1), dtype=object)
    for i, value in enumerate(values):
        array[i, 0] = value
    return array


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(request=requests())
def test_any_request_raises_request_error_or_gives_well_formed_tensors(
    preprocessor: Preprocessor, request: dict[str, Any]
) -> None:
    try:
        outputs = preprocessor(**request)
    except RequestError as error:
        assert str(error)  # always a message
        return
    check_well_formed(preprocessor, outputs, rows=len(request["text"]))


# The refusals a request made only of legal values may still get, each for a documented reason.
DOCUMENTED_REFUSALS = (
    "takes no free-text instruction",
    "but INSTRUCTION_KIND is",
    "a symmetric request to model",
    "template and instruction alone take",
    "more than the model's limit",
)


@FUZZ
@given(data=st.data())
def test_requests_of_legal_values_embed_or_get_a_documented_refusal(preprocessor: Preprocessor, data: Any) -> None:
    texts = data.draw(st.lists(st.one_of(vocabulary_text(), st.text(max_size=80).map(str.encode)), min_size=1))
    n = len(texts)
    tasks = sorted(preprocessor.templates.tasks)
    row = {
        "role": st.sampled_from([b"query", b"document", b"raw", b""]),
        "task": st.sampled_from([t.encode() for t in tasks] + [b""]),
        "instruction": st.one_of(st.just(b""), vocabulary_text()),
        "instruction_kind": st.sampled_from([b"retrieval", b"symmetric", b""]),
    }
    request = {"text": _column(texts)}
    for name, values in row.items():
        if data.draw(st.booleans()):
            request[name] = _column([data.draw(values) for _ in range(n)])
    if data.draw(st.booleans()):
        request["truncate"] = _column([data.draw(st.sampled_from([b"end", b"start", b"none"]))] * n)
    try:
        outputs = preprocessor(**request)
    except RequestError as error:
        assert any(reason in str(error) for reason in DOCUMENTED_REFUSALS), str(error)
        return
    check_well_formed(preprocessor, outputs, rows=n)


@FUZZ
@given(texts=st.lists(st.text(max_size=200), min_size=1, max_size=5), mode=st.sampled_from([b"end", b"start"]))
def test_any_unicode_text_embeds_when_truncation_is_allowed(
    preprocessor: Preprocessor, texts: list[str], mode: bytes
) -> None:
    """Every valid UTF-8 text (empty, whitespace, NUL, emoji, RTL, combining marks) is a valid document."""
    request = _column([t.encode() for t in texts])
    outputs = preprocessor(request, role=_column([b"document"] * len(texts)), truncate=_column([mode] * len(texts)))
    check_well_formed(preprocessor, outputs, rows=len(texts))


def check_well_formed(preprocessor: Preprocessor, outputs: dict[str, np.ndarray], rows: int) -> None:
    names = set(preprocessor.output_names)
    per_row = {"TOKEN_COUNT", "CHUNK_TEXT", "CHUNK_TOKENS", "CHUNK_CHARS", "dimensions", "output_row"}
    assert set(outputs) == names | per_row
    assert all(outputs[name].shape[0] == rows for name in per_row)
    counts = outputs["TOKEN_COUNT"]
    assert counts.shape == (rows, 1) and counts.dtype == np.int32
    mask = outputs["attention_mask"]
    length = int(counts.max())
    for name in names:
        assert outputs[name].shape == (rows, length) and outputs[name].dtype == np.int64
    assert ((counts >= 1) & (counts <= MAX_LENGTH)).all()
    assert (mask.sum(axis=1) == counts[:, 0]).all()
    left = preprocessor.tokenizer.settings.padding_side == "left"
    for row in range(rows):
        n = int(counts[row, 0])
        real = slice(length - n, length) if left else slice(0, n)
        assert mask[row, real].all() and mask[row].sum() == n  # one contiguous run of real tokens
        pads = outputs["input_ids"][row][mask[row] == 0]
        assert (pads == preprocessor.tokenizer.pad_id).all()
        ids = outputs["input_ids"][row, real]
        assert ((ids >= 0) & (ids < len(WORDS))).all()
        if preprocessor.tokenizer.settings.append_token is not None:
            assert WORDS[int(ids[-1])] == preprocessor.tokenizer.settings.append_token
    if "pool_mask" in names:
        pool = outputs["pool_mask"]
        assert ((pool == 0) | (mask == 1)).all()  # pooled positions are real tokens
        assert (pool.sum(axis=1) >= 1).all()  # at least the appended token is pooled


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(max_size=3000), min_size=1, max_size=3), mode=st.sampled_from([b"end", b"start"]))
def test_real_tokenizer_windows_give_the_tokens_of_the_whole_text(
    real_tokenizers: dict[str, tuple[Preprocessor, Preprocessor]], texts: list[str], mode: bytes
) -> None:
    """The long-text window (cut before tokenising) never changes a kept token, on the served tokenizers."""
    request = _column([t.encode() for t in texts])
    for windowed, whole in real_tokenizers.values():
        a = windowed(request, truncate=_column([mode] * len(texts)))
        b = whole(request, truncate=_column([mode] * len(texts)))
        assert np.array_equal(a["input_ids"], b["input_ids"])


@pytest.fixture(scope="module")
def real_tokenizers(prepared_models: dict[str, Any]) -> dict[str, tuple[Preprocessor, Preprocessor]]:
    pairs = {}
    for name, prepared in prepared_models.items():
        tokenizer_json = Path(prepared.hf_dir) / "tokenizer.json"
        windowed = preprocessor_for(name, str(tokenizer_json), max_length=64)
        windowed.tokenizer.window_chars_per_token = 1  # windows of ~80 characters: cut on most examples
        whole = preprocessor_for(name, str(tokenizer_json), max_length=64)
        whole.tokenizer.window_chars_per_token = 10**9
        pairs[name] = (windowed, whole)
    return pairs
