"""CHUNK windows with each family's real tokenizer: they cover the text, keep the overlap, and a window's
characters tokenise as the window (so embedding them alone gives the window's vector; for the BPE tokenizers on
ASCII texts, see BYTE_MERGING)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from instruct_embed.catalog import get_spec
from instruct_embed.catalog.tensors import encoder_input_names
from instruct_embed.local_models.miniature_tokenizers import TokenizerSource, write_tokenizer
from instruct_embed.paths import wheel_cache
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.preprocess import Preprocessor
from instruct_embed.runtime.tokenization import plan_windows

# One served model per real tokenizer: SentencePiece BPE (Mistral), byte-level BPE (Qwen2), Unigram (XLM-R),
# WordPiece (BERT).
FAMILIES = {
    TokenizerSource.MISTRAL_V1: "e5-mistral-7b-instruct",
    TokenizerSource.QWEN2: "gte-Qwen2-1.5B-instruct",
    TokenizerSource.XLM_R: "multilingual-e5-small",
    TokenizerSource.BERT_UNCASED: "all-MiniLM-L6-v2",
}
MAX_LENGTH = 48
WORDS = ["glacier", "melt", "water", "Gletscher", "schmelze", "récule", "東京", "の", "m.", "(note)", "x"]
# Mistral's and Qwen2's tokenizers split a number into digits behind a bare space token: a run of numbers longer than
# a quarter window has no word start for an edge to move to, and there the window's characters may tokenise
# differently at its edge. Such texts are checked for coverage, not for tokenising as themselves.
NUMBERS = ["1,806", "2024", "3.5"]
# The two BPE tokenizers merge bytes: a character outside ASCII may be split over tokens that merge differently at a
# window's edge when its characters are tokenised alone (its window embeds the tokens as the text has them). For
# them the property is checked on ASCII texts; XLM-R's and BERT's tokenise every window as themselves.
BYTE_MERGING = (TokenizerSource.MISTRAL_V1, TokenizerSource.QWEN2)


@pytest.fixture(scope="module", params=list(FAMILIES))
def preprocessor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Preprocessor:
    folder = tmp_path_factory.mktemp(str(request.param))
    write_tokenizer(request.param, folder, wheel_cache(), MAX_LENGTH)
    spec = get_spec(FAMILIES[request.param])
    config = {**spec.runtime_config(), "encoder_inputs": list(encoder_input_names(spec)), "max_length": MAX_LENGTH}
    preprocessor = Preprocessor(config, Path(folder) / "tokenizer.json", max_rows=10_000)
    preprocessor.tokenizer_source = request.param  # type: ignore[attr-defined]
    return preprocessor


def _request(text: str, **inputs: object) -> dict[str, np.ndarray]:
    columns = {"text": np.array([[text.encode()]], dtype=object)}
    for name, value in inputs.items():
        dtype = np.int32 if isinstance(value, int) else object
        columns[name] = np.array([[value.encode() if isinstance(value, str) else value]], dtype=dtype)
    return columns


TEXT = st.lists(st.sampled_from(WORDS), min_size=0, max_size=120).map(" ".join)
WITH_NUMBERS = st.lists(st.sampled_from(WORDS + NUMBERS), min_size=0, max_size=120).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT, overlap=st.integers(0, 12), role=st.sampled_from(["query", "document"]))
def test_windows_cover_the_text_and_tokenise_as_themselves(
    preprocessor: Preprocessor, text: str, overlap: int, role: str
) -> None:
    out = preprocessor(**_request(text, role=role, chunk="windows", chunk_overlap=overlap))
    spans, chars = out["CHUNK_TOKENS"].tolist(), out["CHUNK_CHARS"].tolist()
    assert out["CHUNK_TEXT"].reshape(-1).tolist() == [0] * len(spans)
    assert out["output_row"].reshape(-1).tolist() == list(range(len(spans)))
    assert spans[0][0] == 0
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert start < next_start <= end - overlap, "neighbours share at least the overlap"
    whole = preprocessor(**_request(text, role=role, truncate="none")) if len(spans) == 1 else None
    if whole is not None:  # within the limit: one window, the text as a plain request tokenises it
        assert np.array_equal(whole["input_ids"], out["input_ids"])
    mask = out["attention_mask"].astype(bool)
    if preprocessor.tokenizer_source in BYTE_MERGING and not text.isascii():
        return  # see BYTE_MERGING; coverage is checked for every text (test_windows_cover_any_text)
    for row, (begin, finish) in enumerate(chars):
        alone = preprocessor(**_request(text[begin:finish], role=role, truncate="none"))
        assert alone["input_ids"][0].tolist() == out["input_ids"][row][mask[row]].tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=WITH_NUMBERS, overlap=st.integers(0, 12))
def test_windows_cover_any_text(preprocessor: Preprocessor, text: str, overlap: int) -> None:
    out = preprocessor(**_request(text, chunk="windows", chunk_overlap=overlap))
    spans = out["CHUNK_TOKENS"].tolist()
    whole = preprocessor(**_request(text, chunk="windows", chunk_overlap=0))["CHUNK_TOKENS"]
    assert spans[0][0] == 0 and spans[-1][1] == whole[-1][1], "the first token to the last"
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert start < next_start <= end - overlap


def test_mean_gives_one_output_row_per_text_and_counts_every_window(preprocessor: Preprocessor) -> None:
    long = " ".join(WORDS * 12)
    texts = np.array([[long.encode()], [b"x"]], dtype=object)
    windows = preprocessor(texts, chunk=np.array([[b"windows"]] * 2, dtype=object))
    mean = preprocessor(texts, chunk=np.array([[b"mean"]] * 2, dtype=object))
    owners = windows["CHUNK_TEXT"].reshape(-1)
    assert np.array_equal(mean["output_row"].reshape(-1), owners)
    assert mean["TOKEN_COUNT"].reshape(-1).tolist() == [
        int(windows["TOKEN_COUNT"].reshape(-1)[owners == i].sum()) for i in (0, 1)
    ]


def test_bad_chunk_inputs_are_refused(preprocessor: Preprocessor) -> None:
    with pytest.raises(RequestError, match="unknown CHUNK 'all'; allowed: windows, mean"):
        preprocessor(**_request("x", chunk="all"))
    with pytest.raises(RequestError, match="CHUNK_OVERLAP applies to CHUNK windows or mean"):
        preprocessor(**_request("x", chunk_overlap=4))
    with pytest.raises(RequestError, match="CHUNK_OVERLAP 1000 must be at least 0 and less than"):
        preprocessor(**_request("x", chunk="mean", chunk_overlap=1000))


def test_plan_windows_moves_edges_to_word_starts_and_always_advances() -> None:
    starts = {0, 5, 9, 14, 18}
    # The first end moves back to 9, the third start back to 14; 7 and 17 have no word start a quarter away.
    assert plan_windows(20, 10, 2, lambda k: k in starts) == [(0, 9), (7, 17), (14, 20)]
    nowhere = plan_windows(25, 10, 9, lambda k: False)
    assert nowhere[0] == (0, 10) and nowhere[-1][1] == 25
    assert all(b[0] > a[0] for a, b in itertools.pairwise(nowhere))
