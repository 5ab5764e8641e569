"""`make eval-precisions`: the CPU precisions' cost in SciFact retrieval, and whether their vectors mix in one index.

    python -m benchmarks.run_precisions [--model multilingual-e5-small] [--precisions fp32 bf16 int8] [--limit-docs N]

Each precision is prepared pinned into a repository of its own (validated as `prepare` validates it), served by a
local Triton server, and embeds the whole corpus (as documents) and the test queries through it. Reported:
- per precision: nDCG@10, Recall@100 and MRR@10 (its queries against its documents);
- mixed: the precision's queries against the fp32 documents, as when an index built in fp32 is queried by a
  server that now runs bf16 (and the other way around for bf16 documents and fp32 queries);
- the cosine between each text's vector in that precision and in fp32: minimum, 0.1th percentile and median,
  over documents and queries.
Rewrites the model's tables in benchmarks/scifact.md ("Precisions") and benchmarks/README.md ("precision-cosines").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instruct_embed.evaluation import limit, load_scifact
from instruct_embed.evaluation.metrics import RetrievalMetrics, evaluate_rankings
from instruct_embed.evaluation.ranking import unit_rows
from instruct_embed.runtime.contract import EMBEDDING_OUTPUTS, FLOAT
from instruct_embed.runtime.graph_sessions import CPU_PRECISIONS, FP32

from .run_scifact import machine, write_table
from .run_storage_types import embed_all, top

README = Path(__file__).resolve().parent / "README.md"


@dataclass(frozen=True)
class Embedded:
    precision: str
    documents: np.ndarray
    queries: np.ndarray
    seconds: float
    validation: str


def embed_in(precision: str, model: str, data, root: Path) -> Embedded:
    """`data`'s corpus and queries through a server whose encoder computes in `precision` (pinned)."""
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.configs import ServingOptions

    from .eval_server import eval_server

    repository = root / f"repository-{precision}"
    prepared = prepare_model(
        model, PrepareOptions(repository=repository, serving=ServingOptions(cpu_precision=precision))
    )
    doc_ids = list(data.corpus)
    started = time.perf_counter()
    with eval_server([model], repository, f"tritonserver-precision-{precision}.log") as server:
        # Two requests in flight: the encoder's two instances stay busy, and no request waits out the queue
        # timeout behind long documents on a machine shared with other work.
        docs = embed_all(server.http_url, model, [data.corpus[d] for d in doc_ids], "document", in_flight=2)
        queries = embed_all(server.http_url, model, list(data.queries.values()), "query", in_flight=2)
    out = EMBEDDING_OUTPUTS[FLOAT]
    seconds = time.perf_counter() - started
    print(f"{precision}: {len(doc_ids) + len(data.queries)} texts in {seconds:.0f} s", flush=True)
    return Embedded(precision, unit_rows(docs[out]), unit_rows(queries[out]), seconds, prepared.validation)


def metrics(data, queries: np.ndarray, documents: np.ndarray) -> RetrievalMetrics:
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    order = top(queries @ documents.T)
    ranked = {q: [doc_ids[j] for j in row] for q, row in zip(query_ids, order, strict=True)}
    return evaluate_rankings(data.qrels, ranked)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)


def quality_table(runs: dict[str, Embedded], data, model: str, load: str) -> str:
    import datetime

    base = runs[FP32]
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()}; load average {load}; {model}, card templates, "
        f"each precision served by its own local Triton server; data: {data.describe()}.",
        "",
        "| queries | documents | nDCG@10 | Recall@100 | MRR@10 | nDCG@10 vs fp32 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    reference = metrics(data, base.queries, base.documents).ndcg_at_10
    pairs = [(p, p) for p in runs]
    pairs += [(p, FP32) for p in runs if p != FP32] + [(FP32, p) for p in runs if p != FP32]
    for q, d in pairs:
        m = metrics(data, runs[q].queries, runs[d].documents)
        lines.append(
            f"| {q} | {d} | {m.ndcg_at_10:.5f} | {m.recall_at_100:.5f} | {m.mrr_at_10:.5f} | "
            f"{100 * m.ndcg_at_10 / reference:.2f} % |"
        )
    return "\n".join(lines)


def cosine_table(runs: dict[str, Embedded], model: str) -> str:
    base = runs[FP32]
    lines = [
        f"{model}, SciFact through the server, each text's vector in the precision against its fp32 vector:",
        "",
        "| precision | texts | min cosine | 0.1th percentile | median | validation at prepare time |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for precision, run in runs.items():
        if precision == FP32:
            continue
        c = np.concatenate([cosines(run.documents, base.documents), cosines(run.queries, base.queries)])
        validation = run.validation.split("; served in ", 1)[-1]  # prepare's report on the served precision
        lines.append(
            f"| {precision} | {len(c)} | {c.min():.6f} | {np.percentile(c, 0.1):.6f} | {np.median(c):.6f} | "
            f"{validation} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from instruct_embed.paths import repository_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--precisions", nargs="+", default=list(CPU_PRECISIONS), choices=CPU_PRECISIONS)
    parser.add_argument("--limit-docs", type=int, help="a quick run on a fixed subset (the tables are not rewritten)")
    parser.add_argument("--data", type=Path, help="the scifact folder (default: $INSTRUCT_EMBED_SCIFACT, ../shared)")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    if FP32 not in args.precisions:
        parser.error("--precisions must include fp32: every other precision is compared with it")

    data = load_scifact(args.data)
    if args.limit_docs:
        data = limit(data, max_docs=args.limit_docs)
    print(data.describe(), flush=True)
    load_start = os.getloadavg()[1]
    root = repository_dir().parent / "precisions"
    runs = {p: embed_in(p, args.model, data, root) for p in [FP32, *(p for p in args.precisions if p != FP32)]}
    quality = quality_table(runs, data, args.model, f"{load_start:.1f} / {os.getloadavg()[1]:.1f}")
    agreement = cosine_table(runs, args.model)
    print(quality, agreement, sep="\n\n")
    if not args.no_write and not args.limit_docs:
        write_table(quality, section=f"precisions-{args.model}")
        write_table(agreement, path=README, section=f"precision-cosines-{args.model}")
        print("wrote benchmarks/scifact.md and benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
