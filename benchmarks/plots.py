"""PNG plots of perf_analyzer sweeps: throughput and p95 latency against concurrency, one line per input set.

    python -m benchmarks.plots RESULTS.csv [--out DIR]

Needs matplotlib (`pip install -e ".[bench]"`); drawn with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .perf_analyzer import PerfRow, read_rows


def _series(rows: Sequence[PerfRow], mode: str) -> dict[tuple[str, str], list[PerfRow]]:
    grouped: dict[tuple[str, str], list[PerfRow]] = {}
    for row in rows:
        if row.mode == mode:
            grouped.setdefault((row.protocol, row.inputs), []).append(row)
    return {key: sorted(value, key=lambda r: r.load) for key, value in sorted(grouped.items())}


def plot_sweep(rows: Sequence[PerfRow], path: Path, title: str, mode: str = "concurrency") -> Path | None:
    """Two panels (throughput, p95 latency) against the load; None when `rows` hold no point of `mode`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, ScalarFormatter

    series = _series(rows, mode)
    if not series:
        return None
    label = "concurrency (requests in flight)" if mode == "concurrency" else "offered load (requests/s)"
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colours = {inputs: f"C{i}" for i, inputs in enumerate(sorted({k[1] for k in series}))}
    for (protocol, inputs), points in series.items():
        style = {"color": colours[inputs], "linestyle": "-" if protocol == "grpc" else "--", "marker": "o"}
        loads = [p.load for p in points]
        left.plot(loads, [p.throughput for p in points], label=f"{inputs} ({protocol})", **style)
        right.plot(loads, [p.p95_ms for p in points], label=f"{inputs} ({protocol})", **style)
    left.set(xlabel=label, ylabel="throughput (requests/s)", title="throughput")
    right.set(xlabel=label, ylabel="p95 latency (ms)", title="p95 latency (log scale)")
    right.set_yscale("log")
    right.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    for axis in (left, right):
        if mode == "concurrency":
            axis.set_xscale("log", base=2)
            axis.set_xticks(sorted({p.load for points in series.values() for p in points}))
        axis.xaxis.set_major_formatter(ScalarFormatter())
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_file(csv_path: Path, out_dir: Path) -> list[Path]:
    rows = read_rows(csv_path)
    written = []
    for mode in ("concurrency", "request_rate"):
        title = f"{csv_path.stem}: perf_analyzer, {mode.replace('_', ' ')} sweep"
        path = plot_sweep(rows, out_dir / f"{csv_path.stem}-{mode}.png", title, mode)
        if path is not None:
            written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, nargs="+", help="CSV files written by benchmarks/perf_analyzer.py")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: beside each CSV)")
    args = parser.parse_args(argv)
    for path in args.csv:
        for written in plot_file(path, args.out or path.parent):
            print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
