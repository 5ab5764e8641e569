"""perf_analyzer harness: input data from real SciFact text, concurrency and request-rate sweeps, one CSV.

    python -m benchmarks.perf_analyzer [--model M] [--protocols grpc http] [--inputs queries ...]

Starts a local server for the model (its own repository and free ports), writes perf_analyzer's input-data JSON
(queries only, documents only, or a mix, each entry one text with its ROLE), runs one perf_analyzer per load
point (so one unstable point cannot sink a sweep), and collects every point into one CSV; `plots.py` and
`report.py` turn that CSV into PNGs and markdown. `make bench-setup` installs perf_analyzer (see README.md).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
CACHE = BENCH_DIR.parent / ".cache" / "bench"
DEFAULT_BINARY = CACHE / "bin" / "perf_analyzer"
DEFAULT_LIBS = CACHE / "lib"  # libcudart.so.12, which the binary links even on CPU
INPUT_SETS = ("queries", "documents", "mixed")
MIXED_DOCUMENT_EVERY = 4  # the mixed set: one document after every three queries


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer is missing or failed; the message carries its output."""


# -- input data ------------------------------------------------------------------------------------------------
def _entry(text: str, role: str) -> dict[str, dict[str, list]]:
    # Shapes exclude the batch axis (the model batches); BYTES content is given as strings.
    return {"TEXT": {"content": [text], "shape": [1]}, "ROLE": {"content": [role], "shape": [1]}}


def input_data(texts: Sequence[str], role: str) -> dict[str, list]:
    """perf_analyzer's --input-data JSON: one request per text, sent in order and cycled."""
    if not texts:
        raise ValueError("no texts for the input data")
    return {"data": [_entry(t, role) for t in texts]}


def mixed_input_data(queries: Sequence[str], documents: Sequence[str], document_every: int = MIXED_DOCUMENT_EVERY):
    """Queries with a document in place of every `document_every`-th request (as many entries as queries)."""
    if not queries or not documents:
        raise ValueError("the mixed set needs queries and documents")
    entries = []
    for i, query in enumerate(queries):
        if (i + 1) % document_every == 0:
            entries.append(_entry(documents[(i // document_every) % len(documents)], "document"))
        else:
            entries.append(_entry(query, "query"))
    return {"data": entries}


def write_input_sets(queries: Sequence[str], documents: Sequence[str], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sets = {
        "queries": input_data(queries, "query"),
        "documents": input_data(documents, "document"),
        "mixed": mixed_input_data(queries, documents),
    }
    paths = {}
    for name, data in sets.items():
        paths[name] = folder / f"{name}.json"
        paths[name].write_text(json.dumps(data, ensure_ascii=False))
    return paths


# -- running ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadPoint:
    mode: str  # "concurrency" or "request_rate"
    value: float


@dataclass(frozen=True)
class PerfSettings:
    measurement_interval_ms: int = 4000
    stability_percentage: int = 20  # a shared 2-core machine never gets perf_analyzer's default 10 %
    max_trials: int = 6
    timeout_s: float = 300.0
    # > 0: windows of this many requests instead of measurement_interval_ms. At thousands of requests a second
    # (response-cache hits) perf_analyzer's own bookkeeping of a time window outgrows the window on 2 cores.
    request_count_window: int = 0


@dataclass(frozen=True)
class PerfRow:
    """One load point as perf_analyzer measured it; latencies in milliseconds."""

    model: str
    protocol: str
    inputs: str
    mode: str
    load: float
    throughput: float  # inferences (= requests: batch size 1) per second
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    server_queue_ms: float
    server_compute_ms: float


def binary() -> Path:
    return Path(os.environ.get("PERF_ANALYZER", DEFAULT_BINARY))


def environment() -> dict[str, str]:
    env = dict(os.environ)
    libs = os.environ.get("PERF_ANALYZER_LIBS", str(DEFAULT_LIBS))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libs, env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def command(
    model: str, url: str, protocol: str, data: Path, point: LoadPoint, csv_path: Path, settings: PerfSettings
) -> list[str]:
    load = (
        ["--concurrency-range", f"{int(point.value)}"]
        if point.mode == "concurrency"
        else ["--request-rate-range", f"{point.value:g}"]
    )
    window = (
        ["--measurement-mode", "count_windows", "--measurement-request-count", str(settings.request_count_window)]
        if settings.request_count_window
        else ["--measurement-interval", str(settings.measurement_interval_ms)]
    )
    return [
        str(binary()),
        "-m",
        model,
        "-u",
        url,
        "-i",
        protocol,
        "--input-data",
        str(data),
        *load,
        *window,
        "--stability-percentage",
        str(settings.stability_percentage),
        "--max-trials",
        str(settings.max_trials),
        "-f",
        str(csv_path),
    ]


def _ms(row: dict[str, str], column: str) -> float:
    return float(row.get(column) or 0.0) / 1000.0  # perf_analyzer writes microseconds


def parse_csv(text: str, model: str, protocol: str, inputs: str) -> list[PerfRow]:
    """Rows of perf_analyzer's `-f` CSV (first column "Concurrency" or "Request Rate")."""
    reader = csv.DictReader(io.StringIO(text.strip()))
    if reader.fieldnames is None:
        raise ValueError("empty perf_analyzer CSV")
    first = reader.fieldnames[0]
    mode = {"Concurrency": "concurrency", "Request Rate": "request_rate"}.get(first)
    if mode is None:
        raise ValueError(f"unexpected first column {first!r} in perf_analyzer CSV")
    rows = []
    for row in reader:
        compute = sum(_ms(row, c) for c in ("Server Compute Input", "Server Compute Infer", "Server Compute Output"))
        rows.append(
            PerfRow(
                model=model,
                protocol=protocol,
                inputs=inputs,
                mode=mode,
                load=float(row[first]),
                throughput=float(row["Inferences/Second"]),
                p50_ms=_ms(row, "p50 latency"),
                p90_ms=_ms(row, "p90 latency"),
                p95_ms=_ms(row, "p95 latency"),
                p99_ms=_ms(row, "p99 latency"),
                server_queue_ms=_ms(row, "Server Queue"),
                server_compute_ms=compute,
            )
        )
    return rows


def run_point(
    model: str,
    url: str,
    protocol: str,
    inputs: str,
    data: Path,
    point: LoadPoint,
    out_dir: Path,
    settings: PerfSettings = PerfSettings(),
) -> list[PerfRow]:
    """One perf_analyzer run; raises PerfAnalyzerError with its output when it fails or measures nothing.

    A point that never stabilises (a mix of queries and documents at low concurrency varies by nature) is
    measured once more with a window twice as long and a looser stability criterion.
    """
    try:
        return _run_once(model, url, protocol, inputs, data, point, out_dir, settings)
    except PerfAnalyzerError as error:
        if "stable measurement" not in str(error):
            raise
        looser = replace(
            settings,
            measurement_interval_ms=2 * settings.measurement_interval_ms,
            stability_percentage=2 * settings.stability_percentage,
        )
        return _run_once(model, url, protocol, inputs, data, point, out_dir, looser)


def _run_once(
    model: str,
    url: str,
    protocol: str,
    inputs: str,
    data: Path,
    point: LoadPoint,
    out_dir: Path,
    settings: PerfSettings,
) -> list[PerfRow]:
    if not binary().exists():
        raise PerfAnalyzerError(f"{binary()} not found: run `make bench-setup` (or set $PERF_ANALYZER)")
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{model}-{protocol}-{inputs}-{point.mode}-{point.value:g}.csv"
    csv_path.unlink(missing_ok=True)
    argv = command(model, url, protocol, data, point, csv_path, settings)
    try:
        done = subprocess.run(
            argv, env=environment(), capture_output=True, text=True, timeout=settings.timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise PerfAnalyzerError(f"perf_analyzer ran past {settings.timeout_s:.0f}s: {' '.join(argv)}") from error
    (out_dir / csv_path.with_suffix(".log").name).write_text(done.stdout + done.stderr)
    if done.returncode != 0 or not csv_path.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise PerfAnalyzerError(f"perf_analyzer exited {done.returncode}: {' '.join(argv)}\n{tail}")
    return parse_csv(csv_path.read_text(), model, protocol, inputs)


def write_rows(rows: Sequence[PerfRow], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(PerfRow)])
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    return path


def read_rows(path: Path) -> list[PerfRow]:
    with path.open(newline="") as handle:
        out = []
        for row in csv.DictReader(handle):
            text = {"model", "protocol", "inputs", "mode"}
            out.append(PerfRow(**{k: (v if k in text else float(v)) for k, v in row.items()}))  # type: ignore[arg-type]
        return out


# -- the command line ------------------------------------------------------------------------------------------
def _numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="multilingual-e5-small", help="catalog name of the model to serve")
    parser.add_argument("--protocols", nargs="+", default=["grpc", "http"], choices=["grpc", "http"])
    parser.add_argument("--inputs", nargs="+", default=list(INPUT_SETS), choices=INPUT_SETS)
    parser.add_argument("--concurrency", default="1,2,4,8,16", help="concurrency sweep (comma-separated)")
    parser.add_argument(
        "--request-rate", default="", help="request-rate sweep in requests/s (comma-separated; empty: none)"
    )
    parser.add_argument(
        "--rate-inputs",
        nargs="+",
        default=["queries"],
        choices=INPUT_SETS,
        help="input sets of the request-rate sweep (an offered rate above what documents can take only queues up)",
    )
    parser.add_argument("--target", default="python_ort", help="encoder target: python_ort, or null for the ceiling")
    parser.add_argument("--docs", type=int, default=200, help="documents in the input data (a fixed subset)")
    parser.add_argument("--interval-ms", type=int, default=4000, help="perf_analyzer's measurement window")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "perf_analyzer")
    parser.add_argument("--wait-quiet", action="store_true", help="wait for a 1-minute load average below 1.5")
    args = parser.parse_args(argv)

    from instruct_embed.repository.targets import EncoderTarget

    from .machine import describe_load, load_average, wait_for_quiet
    from .serving import BenchServer, Variant, tuned_serving
    from .texts import load_texts

    texts = load_texts(max_docs=args.docs)
    data = write_input_sets(texts.queries, texts.documents, args.out / "input-data")
    raw = args.out / "raw"  # perf_analyzer's own CSV and log per load point, apart from the collected CSVs
    concurrency = [LoadPoint("concurrency", v) for v in _numbers(args.concurrency)]
    rates = [LoadPoint("request_rate", v) for v in _numbers(args.request_rate)]
    settings = PerfSettings(measurement_interval_ms=args.interval_ms)
    target = EncoderTarget(args.target)
    serving = tuned_serving(os.cpu_count() or 1, target=target)
    variant = Variant(f"perf-{args.model}-{target.value}", args.model, serving)
    if args.wait_quiet:
        wait_for_quiet()
    start_load = load_average()
    rows: list[PerfRow] = []
    with BenchServer(variant, CACHE / "repositories") as server:
        for protocol in args.protocols:
            for inputs in args.inputs:
                for point in concurrency + (rates if inputs in args.rate_inputs else []):
                    try:
                        found = run_point(
                            args.model, server.url(protocol), protocol, inputs, data[inputs], point, raw, settings
                        )
                    except PerfAnalyzerError as error:
                        print(f"skipped {protocol} {inputs} {point.mode}={point.value:g}: {error}")
                        continue
                    rows.extend(found)
                    for row in found:
                        print(
                            f"{protocol} {inputs} {row.mode}={row.load:g}: {row.throughput:.1f} req/s, "
                            f"p50 {row.p50_ms:.1f} ms, p95 {row.p95_ms:.1f} ms"
                        )
    suffix = "" if target is EncoderTarget.PYTHON_ORT else f"-{target.value}"
    path = write_rows(rows, args.out / f"{args.model}{suffix}.csv")
    load = f"{describe_load(start_load)} at the start, {describe_load(load_average())} at the end"
    (args.out / f"{args.model}{suffix}.load.txt").write_text(load + "\n")
    print(f"wrote {path} (load average {load})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
