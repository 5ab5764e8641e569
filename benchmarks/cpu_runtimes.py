"""Which library should compute fp32 on the CPU: ONNX Runtime against OpenVINO, in-process, same graph, same plan.

    python -m benchmarks.cpu_runtimes [--models M ...] [--repeats 5] [--docs 150]

For each model: the graph `prepare` serves (the ORT-fused fp32 graph), run by ONNX Runtime fp32, OpenVINO fp32
(inference precision f32) and, for scale, OpenVINO bf16, each through the server's own Preprocessor and sub-batch
plan (token budget 512, run cost 16, as the benchmarks serve fp32): bulk documents (sorted and budgeted) and
one-text query runs (what 1-text requests give an encoder whose batcher finds nothing to batch). The runtimes run
in turn within every repeat, so a change in the machine's speed falls on all alike; medians of the repeats.
Writes results/cpu_runtimes.json and the table in benchmarks/README.md ("cpu-runtimes"); --no-write prints only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RUNTIMES = {"ONNX Runtime fp32": "f32-ort", "OpenVINO fp32": "f32", "OpenVINO bf16": "bf16"}


def measure(model: str, repeats: int, docs: int, threads: int) -> dict[str, dict[str, list[float]]]:
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.configs import ServingOptions
    from instruct_embed.runtime.graph_sessions import OpenVinoSession

    from .in_process import InProcessOrt
    from .texts import load_texts

    root = BENCH_DIR.parent / ".cache" / "bench" / "repositories" / f"runtimes-{model}"
    prepared = prepare_model(model, PrepareOptions(repository=root, serving=ServingOptions(cpu_precision="fp32")))
    assert prepared.onnx is not None
    texts = load_texts(300)
    documents, queries = list(texts.documents[:docs]), list(texts.queries[:100])
    embedders = {}
    for label, hint in RUNTIMES.items():
        embedder = InProcessOrt(model, prepared.hf_dir, prepared.onnx, threads, token_budget=512, run_cost_tokens=16)
        if hint != "f32-ort":
            # The server's OpenVINO session (one stream, unpinned threads), in the hint's inference precision.
            embedder.encoders = [OpenVinoSession(str(prepared.onnx), threads, hint)]  # type: ignore[list-item]
        embedder.embed(documents[:16], "document")  # warm-up (and OpenVINO's first shapes)
        embedders[label] = embedder
    rates: dict[str, dict[str, list[float]]] = {label: {"bulk": [], "1-text": []} for label in RUNTIMES}
    for _ in range(repeats):
        for label, embedder in embedders.items():
            started = time.perf_counter()
            embedder.embed(documents, "document")
            rates[label]["bulk"].append(len(documents) / (time.perf_counter() - started))
            started = time.perf_counter()
            for query in queries:
                embedder.embed([query], "query")
            rates[label]["1-text"].append(len(queries) / (time.perf_counter() - started))
    return rates


def table(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    lines = [
        "| model | runtime | bulk documents/s | vs ONNX Runtime | 1-text queries/s | vs ONNX Runtime |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model, rates in results.items():
        base = {kind: statistics.median(rates["ONNX Runtime fp32"][kind]) for kind in ("bulk", "1-text")}
        for label, kinds in rates.items():
            bulk, single = statistics.median(kinds["bulk"]), statistics.median(kinds["1-text"])
            lines.append(
                f"| {model} | {label} | {bulk:.1f} | {bulk / base['bulk']:.2f} | {single:.1f} | "
                f"{single / base['1-text']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from .machine import describe_load, load_average, machine

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2", "multilingual-e5-small"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--docs", type=int, default=150)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--no-write", action="store_true", help="print the table, leave README.md")
    args = parser.parse_args(argv)
    load_start = describe_load(load_average())
    results = {model: measure(model, args.repeats, args.docs, args.threads) for model in args.models}
    context = {"machine": machine(), "load": f"{load_start} -> {describe_load(load_average())}", "args": vars(args)}
    text = f"{context['machine']}; load average {context['load']}; medians of {args.repeats}.\n\n{table(results)}"
    print(text)
    if not args.no_write:
        from .report import replace_section

        out = BENCH_DIR / "results" / "cpu_runtimes.json"
        out.write_text(json.dumps({"context": context, "rates": results}, indent=1, default=str) + "\n")
        readme = BENCH_DIR / "README.md"
        readme.write_text(replace_section(readme.read_text(), "cpu-runtimes", text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
