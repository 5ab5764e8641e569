"""`make eval-types`: what the storage types cost in SciFact retrieval, through a local Triton server it starts.

    python -m benchmarks.run_storage_types [--limit-docs N] [--no-write] [--model multilingual-e5-small]

Every text is embedded once: each KServe request asks the ensemble for EMBEDDING, EMBEDDING_INT8 and
EMBEDDING_UBINARY together, so the four rows below score the same vectors. Ranking, per type, as a vector store does:
- float: cosine of the float32 vectors;
- int8: dot product of the int8 codes (the calibrated ranges of the model's repository, not decoded), as an int8
  index computes it; and the cosine of the codes decoded with those ranges (`low + (code + 128) * step`);
- binary: Hamming distance of the packed sign bits (fewest differing bits first); and, not served, the bits taken
  against each dimension's calibrated midpoint instead of 0;
- binary + rescore: the top 100 by Hamming distance, reordered by the float cosine (the float vectors kept beside
  the index, as Qdrant's and Weaviate's rescoring does), so Recall@100 equals binary's.
Rewrites the table in benchmarks/scifact.md ("Storage types").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from instruct_embed.evaluation import limit, load_scifact
from instruct_embed.evaluation.metrics import RetrievalMetrics, evaluate_rankings
from instruct_embed.evaluation.ranking import unit_rows
from instruct_embed.runtime.contract import EMBEDDING_OUTPUTS, FLOAT, INT8, INT8_RANGES_FILE, UBINARY
from instruct_embed.runtime.quantization import Int8Ranges, decode_int8

from .run_scifact import machine, write_table

TOP_K = 100
OUTPUTS = (EMBEDDING_OUTPUTS[FLOAT], EMBEDDING_OUTPUTS[INT8], EMBEDDING_OUTPUTS[UBINARY])
PER_REQUEST = 32
IN_FLIGHT = 4


def embed_all(url: str, model: str, texts: list[str], role: str, in_flight: int = IN_FLIGHT) -> dict[str, np.ndarray]:
    """Every storage type of `texts`, from one pass through the server, `in_flight` requests at a time."""
    import tritonclient.http as http

    def one(part: list[str]) -> dict[str, np.ndarray]:
        client = http.InferenceServerClient(url, network_timeout=600, connection_timeout=600)
        try:
            inputs = []
            for name, values in (("TEXT", part), ("ROLE", [role] * len(part))):
                tensor = http.InferInput(name, [len(part), 1], "BYTES")
                tensor.set_data_from_numpy(np.array([[v.encode("utf-8")] for v in values], dtype=object))
                inputs.append(tensor)
            result = client.infer(model, inputs, outputs=[http.InferRequestedOutput(o) for o in OUTPUTS])
            return {o: result.as_numpy(o) for o in OUTPUTS}
        finally:
            client.close()

    parts = [texts[i : i + PER_REQUEST] for i in range(0, len(texts), PER_REQUEST)]
    with ThreadPoolExecutor(in_flight) as pool:
        answers = list(pool.map(one, parts))
    return {o: np.concatenate([a[o] for a in answers]) for o in OUTPUTS}


def top(scores: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """Indices of the k highest scores per row, best first (ties in document order)."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def hamming(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Differing bits between each packed query and document: [nq, nd]."""
    table = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
    return np.stack([table[np.bitwise_xor(q[None, :], docs)].sum(axis=1) for q in queries])


def rankings(queries: dict[str, np.ndarray], docs: dict[str, np.ndarray], ranges: Int8Ranges) -> dict[str, np.ndarray]:
    f, i8, bits = OUTPUTS
    cosine = unit_rows(queries[f]) @ unit_rows(docs[f]).T
    int8 = queries[i8].astype(np.int32) @ docs[i8].astype(np.int32).T
    decoded = unit_rows(decode_int8(queries[i8], ranges)) @ unit_rows(decode_int8(docs[i8], ranges)).T
    width = queries[f].shape[1]
    midpoints = (ranges.low[width] + ranges.high[width]) / 2
    distance = hamming(queries[bits], docs[bits])
    by_bits = top(-distance.astype(np.float64))
    rescored = np.take_along_axis(by_bits, top(np.take_along_axis(cosine, by_bits, axis=1)), axis=1)
    # Not served: sign bits taken against each dimension's calibrated midpoint instead of 0, from the float vectors.
    centred = hamming(np.packbits(queries[f] > midpoints, axis=1), np.packbits(docs[f] > midpoints, axis=1))
    return {
        "float32": top(cosine),
        "int8": top(int8.astype(np.float64)),
        "int8, decoded, cosine": top(decoded),
        "binary": by_bits,
        "binary + rescore": rescored,
        "binary at calibrated midpoints (offline, not served)": top(-centred.astype(np.float64)),
    }


BYTES = {"float32": lambda d: 4 * d, "int8": lambda d: d, "binary": lambda d: -(-d // 8)}


def table(rows: Sequence[tuple[str, RetrievalMetrics]], dim: int, model: str, subset: str, load: str) -> str:
    import datetime

    lines = [
        f"Measured {datetime.date.today().isoformat()} on {machine()}; load average {load}; {model} (fp32 encoder, "
        f"card templates), one pass through the server; data: {subset}.",
        "",
        "| storage type | bytes per vector | nDCG@10 | Recall@100 | MRR@10 | nDCG@10 vs float32 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    base = rows[0][1].ndcg_at_10
    for name, m in rows:
        size = BYTES[name.split(" ")[0].rstrip(",")](dim)
        extra = " (+ float32 kept for the rescore)" if "rescore" in name else ""
        lines.append(
            f"| {name} | {size}{extra} | {m.ndcg_at_10:.5f} | {m.recall_at_100:.5f} | {m.mrr_at_10:.5f} | "
            f"{100 * m.ndcg_at_10 / base:.1f} % |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from instruct_embed.paths import repository_dir
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.configs import ServingOptions

    from .eval_server import eval_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--limit-docs", type=int, help="a quick run on a fixed subset (the table is not rewritten)")
    parser.add_argument("--data", type=Path, help="the scifact folder (default: $INSTRUCT_EMBED_SCIFACT, ../shared)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args(argv)

    data = load_scifact(args.data)
    if args.limit_docs:
        data = limit(data, max_docs=args.limit_docs)
    print(data.describe(), flush=True)
    repository = repository_dir()
    # The table is the fp32 encoder's (the storage types quantise its vectors), on any CPU.
    prepare_model(args.model, PrepareOptions(repository=repository, serving=ServingOptions(cpu_precision="fp32")))
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    load_start = os.getloadavg()[1]
    started = time.perf_counter()
    with eval_server([args.model], repository, "tritonserver-eval-types.log") as server:
        docs = embed_all(server.http_url, args.model, [data.corpus[d] for d in doc_ids], "document")
        queries = embed_all(server.http_url, args.model, [data.queries[q] for q in query_ids], "query")
    print(f"embedded {len(doc_ids) + len(query_ids)} texts in {time.perf_counter() - started:.0f} s", flush=True)
    ranges = Int8Ranges.read(repository / f"{args.model}_postprocess" / "1" / INT8_RANGES_FILE)
    assert ranges is not None, "prepare calibrates the ranges"
    dim = docs[OUTPUTS[0]].shape[1]
    rows = []
    for name, order in rankings(queries, docs, ranges).items():
        ranked = {q: [doc_ids[j] for j in row] for q, row in zip(query_ids, order, strict=True)}
        rows.append((name, evaluate_rankings(data.qrels, ranked)))
    text = table(rows, dim, args.model, data.describe(), f"{load_start:.1f} / {os.getloadavg()[1]:.1f}")
    print(text)
    if not args.no_write and not args.limit_docs:
        write_table(text, section="storage-types")
        print("wrote benchmarks/scifact.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
