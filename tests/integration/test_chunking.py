"""CHUNK through the real server: a 3,000-token document as token windows instead of cut at 512 tokens."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from instruct_embed.client import EmbedClient, InvalidRequest
from instruct_embed.export.validate import cosine_rows
from instruct_embed.runtime.postprocess import merge_rows

pytestmark = pytest.mark.integration

E5 = "multilingual-e5-small"
SENTENCES = [
    "Glaciers store about seventy percent of the world's fresh water.",
    "Le glacier recule chaque année de plusieurs dizaines de mètres.",
    "Meltwater feeds rivers that millions of people depend on in summer.",
    "Die Gletscherschmelze verändert die Landschaft der Alpen sichtbar.",
    "Satellite gravimetry measures the mass a glacier loses every year.",
]


def long_document(tokens_wanted: int, client: EmbedClient) -> str:
    text, i = "", 0
    while True:
        text += f"{SENTENCES[i % len(SENTENCES)]} (note {i}) "
        i += 1
        if i % 20 == 0:
            _, counts = client.encode_with_counts(E5, [text], chunk="mean", chunk_overlap=0)
            if counts[0] >= tokens_wanted:
                return text.strip()


@pytest.fixture(scope="module", params=["http", "grpc"])
def client(request: pytest.FixtureRequest, triton_server: Any) -> Iterator[EmbedClient]:
    url = triton_server.http_url if request.param == "http" else triton_server.grpc_url
    with EmbedClient(url, request.param) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def document(triton_server: Any) -> str:
    with EmbedClient(triton_server.http_url) as sdk:
        return long_document(3000, sdk)


def test_windows_cover_every_token_with_the_overlap_asked_for(client: EmbedClient, document: str) -> None:
    (windows,) = client.encode_windows(E5, [document], chunk_overlap=48)
    spans = windows.tokens.tolist()
    assert len(windows) >= 6, "3,000 tokens do not fit in 512"
    assert spans[0][0] == 0
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert 0 < end - start <= 512 - 2 - 2, "a window fits the model with its specials and 'passage: '"
        assert end - next_start >= 48, "neighbours share at least the overlap (more where moved to a word start)"
        assert next_start > start
    # Every token once plus the overlaps: the last window ends at the text's last token. Without overlap the
    # windows' counts add up to the text's tokens plus each window's 4 (2 specials, 2 of 'passage: ').
    (disjoint,) = client.encode_windows(E5, [document], chunk_overlap=0)
    assert disjoint.tokens[0][0] == 0 and (disjoint.tokens[1:, 0] == disjoint.tokens[:-1, 1]).all()
    assert spans[-1][1] == disjoint.tokens[-1][1] == int(disjoint.token_counts.sum()) - 4 * len(disjoint)
    assert windows.token_counts.sum() == sum(e - s + 4 for s, e in spans), "counts: each window's real tokens"


def test_each_window_is_the_vector_of_its_text_alone(client: EmbedClient, document: str) -> None:
    (windows,) = client.encode_windows(E5, [document], chunk_overlap=32)
    pieces = [document[start:end] for start, end in windows.chars.tolist()]
    alone, counts = client.encode_with_counts(E5, pieces, truncate="none")
    assert counts.tolist() == windows.token_counts.tolist(), "a window's characters tokenise as the window"
    assert cosine_rows(windows.vectors, alone).min() > 1 - 1e-5


def test_mean_is_the_renormalised_mean_of_the_windows(client: EmbedClient, document: str) -> None:
    (windows,) = client.encode_windows(E5, [document])
    mean = client.encode(E5, [document, "a short text"], chunk="mean")
    expected = merge_rows(windows.vectors, np.zeros((len(windows), 1), np.int32))
    assert cosine_rows(mean[:1], expected).min() > 1 - 1e-6
    assert np.isclose(np.linalg.norm(mean, axis=1), 1.0, atol=1e-5).all()
    # A text within the limit is one window: its mean is its plain vector.
    assert cosine_rows(mean[1:], client.encode(E5, ["a short text"])).min() > 1 - 1e-6
    # The int8 of the mean is computed from the mean (one row per text).
    assert client.encode(E5, [document], chunk="mean", output_type="int8").shape == (1, 384)


def test_bad_chunk_requests_are_refused_by_name(client: EmbedClient, document: str) -> None:
    with pytest.raises(InvalidRequest, match="CHUNK_OVERLAP 600 must be at least 0 and less than the 508"):
        client.encode(E5, [document], chunk="mean", chunk_overlap=600)
    with pytest.raises(InvalidRequest, match="unknown chunk 'all'"):
        client.encode(E5, [document], chunk="all")
    with pytest.raises(InvalidRequest, match="more than the 64 rows one request may carry"):
        client.encode(E5, [document * 12], chunk="mean", chunk_overlap=0)
