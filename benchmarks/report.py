"""Markdown from the results: the side-by-side tables and the perf_analyzer sweeps, into benchmarks/README.md.

    python -m benchmarks.report [--results DIR] [--readme PATH]

Only the text between the `<!-- NAME:start -->` / `<!-- NAME:end -->` markers is rewritten; the rest of the README
(method, commands, the GPU plan) is written by hand.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from .perf_analyzer import PerfRow, read_rows
from .ratios import load, measurements_table, ratio_rows, ratio_table

BENCH_DIR = Path(__file__).resolve().parent


def perf_table(rows: Sequence[PerfRow]) -> str:
    lines = [
        "| model | protocol | inputs | load | req/s | p50 ms | p95 ms | p99 ms | server queue ms | server compute ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        load_text = f"c={r.load:g}" if r.mode == "concurrency" else f"{r.load:g} req/s offered"
        lines.append(
            f"| {r.model} | {r.protocol} | {r.inputs} | {load_text} | {r.throughput:.1f} | {r.p50_ms:.1f} | "
            f"{r.p95_ms:.1f} | {r.p99_ms:.1f} | {r.server_queue_ms:.1f} | {r.server_compute_ms:.1f} |"
        )
    return "\n".join(lines)


def precision_group(path: Path) -> str:
    """The README tables a side-by-side piece belongs to: "" (the headline) for the default configuration (CPU
    precision auto), "-fp32" / "-bf16" for a precision pinned on the command line. Pieces from before auto existed
    record only their serving options, and count as pinned."""
    _, context = load(path)
    if context.get("cpu_precision_request") == "auto":
        return ""
    return "-bf16" if "cpu_precision='bf16'" in str(context.get("serving", "")) else "-fp32"


def _pieces(paths: Sequence[Path]) -> tuple[list, list[dict]]:
    measurements, contexts = [], []
    for path in paths:
        found, context = load(path)
        measurements += found
        contexts.append({**context, "file": path.name})
    return measurements, contexts


def _runs(contexts: Sequence[dict]) -> str:
    return "\n".join(
        f"- `{c['file']}`: {c['date']}, load average (1/5/15 min) {c['load_start']} at the start, {c['load_end']} at "
        f"the end; `{c['command']}`"
        for c in contexts
    )


def side_by_side_section(paths: Sequence[Path]) -> str:
    measurements, contexts = _pieces(paths)
    first = contexts[0]
    return "\n".join(
        [
            f"Machine: {first['machine']}. {first['texts']}; {first['threads']} threads for every system; medians of "
            f"{first['repeats']} repeats. Runs (each piece waited for idle cores before every repeat and repeated "
            "any repeat during which other processes used the cores; the notes give the most they used):",
            "",
            _runs(contexts),
            "",
            ratio_table(ratio_rows(measurements)),
            "",
            "<details><summary>Every measurement (each repeat)</summary>",
            "",
            measurements_table(measurements),
            "",
            "</details>",
            "",
            f"Server configuration: `{first['serving']}`",
            "",
            "Versions: " + ", ".join(f"{k} {v}" for k, v in dict(first["versions"]).items()),
        ]
    )


def headline_section(paths: Sequence[Path]) -> str:
    measurements, contexts = _pieces(paths)
    loads = ", ".join(f"{c['load_start']} -> {c['load_end']}" for c in contexts)
    return "\n".join(
        [
            f"Measured on {contexts[0]['machine']} ({contexts[0]['texts']}); load averages at the start -> end of "
            f"each piece: {loads}.",
            "",
            ratio_table(ratio_rows(measurements)),
        ]
    )


def perf_section(folder: Path, relative_to: Path) -> str:
    parts = []
    for csv_path in sorted(folder.glob("*.csv")):
        rows = read_rows(csv_path)
        if not rows:
            continue
        load_file = csv_path.with_suffix(".load.txt")
        load_text = load_file.read_text().strip() if load_file.exists() else "not recorded"
        parts += [f"### {csv_path.stem}", "", f"Load average (1/5/15 min): {load_text}.", ""]
        # Exactly this CSV's plots (a model's name is a prefix of its null-encoder CSV's).
        for png in (folder / f"{csv_path.stem}-{mode}.png" for mode in ("concurrency", "request_rate")):
            if not png.exists():
                continue
            parts += [f"![{png.stem}]({png.relative_to(relative_to).as_posix()})", ""]
        parts += [perf_table(rows), ""]
    return "\n".join(parts).strip() or "(no perf_analyzer results yet: run `make bench`)"


def replace_section(document: str, name: str, text: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in document or end not in document:
        raise ValueError(f"the document lacks the {start} / {end} markers")
    pattern = re.compile(f"{re.escape(start)}.*?{re.escape(end)}", flags=re.DOTALL)
    return pattern.sub(lambda _: f"{start}\n{text}\n{end}", document)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--readme", type=Path, default=BENCH_DIR / "README.md")
    args = parser.parse_args(argv)
    document = args.readme.read_text()
    pieces = sorted(args.results.glob("side_by_side*.json"))
    # Runs of the default and of pinned precisions measure the same (model, scenario, system): each gets its tables.
    by_precision: dict[str, list[Path]] = {}
    for piece in pieces:
        by_precision.setdefault(precision_group(piece), []).append(piece)
    for suffix, paths in by_precision.items():
        if paths:
            document = replace_section(document, f"side-by-side{suffix}", side_by_side_section(paths))
            document = replace_section(document, f"headline{suffix}", headline_section(paths))
    perf = args.results / "perf_analyzer"
    if perf.is_dir():
        document = replace_section(document, "perf-analyzer", perf_section(perf, args.readme.parent))
    args.readme.write_text(document)
    print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
