"""`make eval`: SciFact retrieval through a local Triton server it starts, for the runs below; rewrites the results
table in benchmarks/scifact.md.

    python -m benchmarks.run_scifact [--limit-docs N] [--in-process] [--no-write] [--cpu-precision bf16]

Prepares the models first if the repository lacks them. `--in-process` adds the fp32 PyTorch run of
multilingual-e5-small (card templates), the computation the server must match (about 10 minutes on 2 cores).
`--cpu-precision bf16` serves the card runs in bf16 (OpenVINO, CPUs with bf16 units) from a repository of their own
and writes their own table, to show what bf16 costs in retrieval quality.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

from instruct_embed.evaluation import EvalResult, Variant, limit, load_scifact, run_retrieval
from instruct_embed.runtime.graph_sessions import CPU_PRECISIONS

RUNS = (
    ("multilingual-e5-small", Variant.CARD),
    ("multilingual-e5-small", Variant.NONE),
    ("multilingual-e5-small", Variant.SWAPPED),
    ("all-MiniLM-L6-v2", Variant.CARD),
)
# Published nDCG@10 on this split (SOURCE.md of the data): the original, unrounded weights in MTEB.
PUBLISHED = {"multilingual-e5-small": 0.67585}
RESULTS_DOC = Path(__file__).resolve().parent / "scifact.md"
BF16_RUNS = tuple((model, variant) for model, variant in RUNS if variant is Variant.CARD)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} CPU cores ({model}), {system}, Python {platform.python_version()}"


def table(results: Sequence[EvalResult], subset: str, load: str) -> str:
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()}; load average {load} (start / end: texts/s "
        f"falls when other work shares the cores, the scores do not); data: {subset}.",
        "",
        "| model | variant | embedder | nDCG@10 | Recall@100 | MRR@10 | published nDCG@10 | texts/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        published = PUBLISHED.get(r.model, "") if r.variant is Variant.CARD else ""
        embedder = r.embedder.split("://")[0]  # "server http", "server grpc" or the in-process label
        m = r.metrics
        lines.append(
            f"| {r.model} | {r.variant.value} | {embedder} | {m.ndcg_at_10:.5f} | {m.recall_at_100:.5f} | "
            f"{m.mrr_at_10:.5f} | {published} | {r.texts_per_s:.1f} |"
        )
    return "\n".join(lines)


def write_table(text: str, path: Path = RESULTS_DOC, section: str = "results") -> None:
    """Replace the text between `<!-- section:start -->` and `<!-- section:end -->` (report.replace_section)."""
    from .report import replace_section

    path.write_text(replace_section(path.read_text(), section, text))


def main(argv: Sequence[str] | None = None) -> int:
    from instruct_embed.catalog import get_spec
    from instruct_embed.client import EmbedClient
    from instruct_embed.evaluation.embedders import InProcessEmbedder, ServerEmbedder
    from instruct_embed.paths import repository_dir
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.configs import ServingOptions

    from .eval_server import eval_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-docs", type=int, help="a quick run on a fixed subset (the table is not rewritten)")
    parser.add_argument("--protocol", default="http", choices=["http", "grpc"])
    parser.add_argument("--in-process", action="store_true", help="also run e5-small (card) in fp32 PyTorch")
    parser.add_argument("--data", type=Path, help="the scifact folder (default: $INSTRUCT_EMBED_SCIFACT, ../shared)")
    parser.add_argument("--no-write", action="store_true", help=f"print the table only, leave {RESULTS_DOC.name}")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument(
        "--cpu-precision", default="fp32", choices=CPU_PRECISIONS, help="bf16: the card runs on the bf16 encoder"
    )
    args = parser.parse_args(argv)
    bf16 = args.cpu_precision == "bf16"
    runs = BF16_RUNS if bf16 else RUNS
    progress = not args.no_progress

    data = load_scifact(args.data)
    if args.limit_docs:
        data = limit(data, max_docs=args.limit_docs)
    print(data.describe(), flush=True)
    models = tuple(dict.fromkeys(model for model, _ in runs))
    repository = repository_dir().with_name("repository-bf16") if bf16 else repository_dir()
    prepare = PrepareOptions(repository=repository, serving=ServingOptions(cpu_precision=args.cpu_precision))
    prepared = {name: prepare_model(name, prepare) for name in models}
    results: list[EvalResult] = []
    load_start = os.getloadavg()[1]
    with eval_server(models, repository, "tritonserver-eval.log") as server:
        url = server.http_url if args.protocol == "http" else server.grpc_url
        with EmbedClient(url, args.protocol) as client:
            for model, variant in runs:
                served = ServerEmbedder(client, model)
                if bf16:  # the table keeps what precedes "://": "server http bf16"
                    served.label = served.label.replace("://", " bf16://", 1)
                results.append(run_retrieval(data, served, model, variant, progress))
                print(results[-1].summary(), flush=True)
    if args.in_process:
        e5 = "multilingual-e5-small"
        embedder = InProcessEmbedder(get_spec(e5), prepared[e5].hf_dir)
        results.append(run_retrieval(data, embedder, e5, Variant.CARD, progress))
        print(results[-1].summary(), flush=True)
    text = table(results, data.describe(), f"{load_start:.1f} / {os.getloadavg()[1]:.1f}")
    print(text)
    if not args.no_write and not args.limit_docs:
        write_table(text, section="results-bf16" if bf16 else "results")
        print(f"wrote {RESULTS_DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
