"""`instruct-embed eval scifact`: retrieval quality of a served model (or the in-process PyTorch computation)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from instruct_embed.catalog import DEFAULT_MODEL
from instruct_embed.catalog.enums import parse_enum
from instruct_embed.evaluation.variants import Variant


@dataclass(frozen=True)
class EvalOptions:
    model: str
    url: str | None
    protocol: str
    variant: Variant
    limit_docs: int | None
    limit_queries: int | None
    data: Path | None
    verify: bool
    in_process: bool
    hf_dir: Path | None
    batch_size: int
    as_json: bool
    progress: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalOptions:
        return cls(
            model=args.model,
            url=args.url,
            protocol=args.protocol,
            variant=parse_enum(Variant, args.variant, "variant"),
            limit_docs=args.limit_docs,
            limit_queries=args.limit_queries,
            data=args.data,
            verify=not args.no_verify,
            in_process=args.in_process,
            hf_dir=args.hf_dir,
            batch_size=args.batch_size,
            as_json=args.json,
            progress=not args.no_progress,
        )


def register_eval(sub: argparse._SubParsersAction) -> None:
    evaluation = sub.add_parser("eval", help="retrieval quality on a public benchmark, through a running server")
    benchmarks = evaluation.add_subparsers(dest="benchmark", required=True)
    p = benchmarks.add_parser(
        "scifact", help="BEIR SciFact test split (300 queries, 5,183 abstracts): nDCG@10, Recall@100, MRR@10"
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="served model name (the ensemble)")
    p.add_argument("--url", help="server address host:port (default: 127.0.0.1:8000 http, :8001 grpc)")
    p.add_argument("--protocol", default="http", choices=["http", "grpc"])
    p.add_argument(
        "--variant",
        default=Variant.CARD.value,
        choices=[v.value for v in Variant],
        help="card: the model card's query/document templates; none: no prefix on either side; swapped: queries "
        "get the document template and documents the query template (shows what the instructions are worth)",
    )
    p.add_argument(
        "--limit-docs",
        type=int,
        metavar="N",
        help="a quick run: at most N documents, all judged documents of the kept queries plus fixed distractors",
    )
    p.add_argument("--limit-queries", type=int, metavar="M", help="keep at most M queries (a fixed subset)")
    p.add_argument(
        "--data",
        type=Path,
        help="the BEIR scifact folder (default: $INSTRUCT_EMBED_SCIFACT, then <repo>/../shared/data/scifact)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check (e.g. a raw BEIR download)")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="embed with fp32 PyTorch in this process instead of the server: the reference the server must match",
    )
    p.add_argument("--hf-dir", type=Path, help="with --in-process: the transformers folder (default: the prepared one)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per request (or per PyTorch batch)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=cmd_eval_scifact)


def _hf_dir(options: EvalOptions) -> Path:
    from instruct_embed.paths import model_paths

    hf_dir = options.hf_dir or model_paths(options.model).hf_dir
    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"no transformers folder at {hf_dir}: run `instruct-embed prepare {options.model}`")
    return hf_dir


def cmd_eval_scifact(args: argparse.Namespace) -> int:
    from instruct_embed.catalog import get_spec
    from instruct_embed.client import EmbedClient, EmbedError
    from instruct_embed.evaluation.data import DataError, limit, load_scifact
    from instruct_embed.evaluation.embedders import InProcessEmbedder, ServerEmbedder
    from instruct_embed.evaluation.runner import run_retrieval

    try:
        options = EvalOptions.from_args(args)
        data = load_scifact(options.data, verify=options.verify)
        if options.limit_docs is not None or options.limit_queries is not None:
            data = limit(data, options.limit_docs, options.limit_queries)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not options.as_json:
        print(data.describe(), file=sys.stderr)
    try:
        if options.in_process:
            embedder = InProcessEmbedder(get_spec(options.model), _hf_dir(options), options.batch_size)
            result = run_retrieval(data, embedder, options.model, options.variant, options.progress)
        else:
            with EmbedClient(options.url, options.protocol) as client:
                server = ServerEmbedder(client, options.model, options.batch_size)
                result = run_retrieval(data, server, options.model, options.variant, options.progress)
    except (EmbedError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(result.to_json() if options.as_json else result.summary())
    return 0
