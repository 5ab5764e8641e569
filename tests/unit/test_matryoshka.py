"""DIMENSIONS: the sizes each catalog model takes, and the cut the postprocess step makes."""

from __future__ import annotations

import numpy as np
import pytest

from instruct_embed.catalog import get_spec, model_names
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.matryoshka import allowed_sizes, matryoshka_prefix, requested_size


def _column(size: int, n: int = 3) -> np.ndarray:
    return np.full((n, 1), size, dtype=np.int32)


def test_the_cut_is_the_renormalised_prefix() -> None:
    rng = np.random.default_rng(0)
    full = rng.standard_normal((5, 1024)).astype(np.float32)
    full /= np.linalg.norm(full, axis=1, keepdims=True)
    cut = matryoshka_prefix(full, _column(256, 5))
    assert cut.shape == (5, 256) and cut.dtype == np.float32
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)
    assert np.allclose(cut * np.linalg.norm(full[:, :256], axis=1, keepdims=True), full[:, :256], atol=1e-6)
    assert np.array_equal(matryoshka_prefix(full, _column(1024, 5)), full)


def test_qwen3_takes_its_card_sizes_and_refuses_others_by_name() -> None:
    spec = get_spec("Qwen3-Embedding-0.6B")
    assert allowed_sizes(spec.matryoshka_dims, spec.dim) == (32, 64, 128, 256, 512, 768, 1024)
    assert requested_size(_column(256), 3, spec.matryoshka_dims, spec.dim, spec.name) == 256
    assert requested_size(None, 3, spec.matryoshka_dims, spec.dim, spec.name) == 1024
    with pytest.raises(RequestError, match=r"DIMENSIONS 300 .* allowed: 32, 64, 128, 256, 512, 768, 1024$"):
        requested_size(_column(300), 3, spec.matryoshka_dims, spec.dim, spec.name)


def test_a_model_without_sizes_takes_its_width_alone() -> None:
    spec = get_spec("multilingual-e5-small")
    assert requested_size(_column(384), 3, spec.matryoshka_dims, spec.dim, spec.name) == 384
    with pytest.raises(RequestError, match=r"not trained for Matryoshka sizes .* allowed: 384"):
        requested_size(_column(128), 3, spec.matryoshka_dims, spec.dim, spec.name)


def test_one_size_per_request_and_one_per_text() -> None:
    spec = get_spec("Qwen3-Embedding-0.6B")
    mixed = np.array([[32], [64]], dtype=np.int32)
    with pytest.raises(RequestError, match="the same for every text"):
        requested_size(mixed, 2, spec.matryoshka_dims, spec.dim, spec.name)
    with pytest.raises(RequestError, match="DIMENSIONS has 3 rows but TEXT has 2"):
        requested_size(_column(32), 2, spec.matryoshka_dims, spec.dim, spec.name)


@pytest.mark.parametrize("name", model_names())
def test_every_listed_size_fits_the_model(name: str) -> None:
    spec = get_spec(name)
    assert all(0 < d <= spec.dim for d in spec.matryoshka_dims)
    assert not spec.matryoshka_dims or spec.matryoshka_dims[-1] == spec.dim, "the full width is a size too"
