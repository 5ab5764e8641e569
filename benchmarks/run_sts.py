"""`make eval-sts`: STS Benchmark (test split) through a local Triton server it starts, each model with each way of
sending a pair (instruct_embed.evaluation.sts.VARIANTS); rewrites the results table in benchmarks/sts.md.

    python -m benchmarks.run_sts [--model NAME ...] [--protocol grpc] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from instruct_embed.evaluation.sts import VARIANTS, load_stsb, score_variants

from .machine import machine
from .report import replace_section

MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")
RESULTS_DOC = Path(__file__).resolve().parent / "sts.md"


def table(scores: Mapping[str, Mapping[str, float]], pairs: int) -> str:
    names = list(VARIANTS)
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()}; STS-B test split, {pairs} pairs; Spearman "
        "correlation x100 between each pair's cosine and its human score.",
        "",
        f"| model | {' | '.join(names)} |",
        f"| --- |{' --- |' * len(names)}",
    ]
    for model, by_variant in scores.items():
        lines.append(f"| {model} | {' | '.join(f'{by_variant[name]:.2f}' for name in names)} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from instruct_embed.client import EmbedClient
    from instruct_embed.paths import repository_dir
    from instruct_embed.prepare import PrepareOptions, prepare_model

    from .eval_server import eval_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help=f"default: {', '.join(MODELS)}")
    parser.add_argument("--protocol", default="grpc", choices=["http", "grpc"])
    parser.add_argument("--no-write", action="store_true", help=f"print the table only, leave {RESULTS_DOC.name}")
    args = parser.parse_args(argv)
    models = tuple(args.model or MODELS)
    pairs = load_stsb("test")
    repository = repository_dir()
    for name in models:
        prepare_model(name, PrepareOptions(repository=repository))
    scores: dict[str, dict[str, float]] = {}
    with eval_server(models, repository, "tritonserver-sts.log") as server:
        url = server.http_url if args.protocol == "http" else server.grpc_url
        with EmbedClient(url, args.protocol) as client:
            for model in models:
                scores[model] = score_variants(functools.partial(client.encode, model), pairs)
                print(model, scores[model], flush=True)
    text = table(scores, len(pairs.scores))
    print(text)
    if not args.no_write:
        RESULTS_DOC.write_text(replace_section(RESULTS_DOC.read_text(), "results", text))
        print(f"wrote {RESULTS_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
