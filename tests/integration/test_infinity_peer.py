"""The real infinity-emb peer of the side-by-side run computes what sentence-transformers computes.

Needs infinity-emb's own environment (`make bench-peers`: .cache/bench/infinity-venv), which CI does not create.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import INFINITY_VENV, InfinityServer, infinity_missing

MODEL = "all-MiniLM-L6-v2"
TEXTS = [
    "Vitamin B12 deficiency causes anaemia.",
    "What is the role of microRNA in cancer?",
    "ALDH1 expression is associated with poorer prognosis for breast cancer primary tumors. " * 30,  # > 256 tokens
    "a",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        infinity_missing() is not None,
        reason=f"infinity-emb's environment {INFINITY_VENV} is absent (make bench-peers)",
    ),
]


def _hf_dir() -> Path:
    hf = Path(os.environ["INSTRUCT_EMBED_HOME"]) / "models" / MODEL / "hf"
    if not (hf / "modules.json").is_file():
        pytest.skip(f"the local {MODEL} sentence-transformers folder {hf} is absent")
    return hf


def test_infinity_agrees_with_sentence_transformers_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from benchmarks.in_process import SentenceTransformersBaseline

    hf = _hf_dir()
    peer = InfinityServer(MODEL, hf, threads=2, log_file=tmp_path / "infinity.log")
    with peer:
        group = peer.process.pid if peer.process else 0
        _, queries = peer.online(TEXTS, concurrency=2)
        _, documents = peer.bulk(TEXTS, batch=32, in_flight=1)
    reference = SentenceTransformersBaseline(MODEL, hf, threads=2)
    for role, vectors in (("query", queries), ("document", documents)):
        expected = reference.embed(TEXTS, role)
        assert vectors.shape == expected.shape and vectors.dtype == np.float32
        assert float(np.min(np.sum(vectors * expected, axis=1))) >= 0.9999
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert peer.process is None
    with pytest.raises(ProcessLookupError):  # no process of its group is left
        os.killpg(group, 0)
