"""The OpenAI-compatible gateway against raw Triton HTTP: online queries, one text per request, 16 in flight.

    python -m benchmarks.gateway_overhead [--model M] [--repeats 3] [--seconds S] [--concurrency 16]

One Triton server (the benchmarks' tuned CPU configuration, as in side_by_side) and one gateway in front of it,
started the way a user starts it (`instruct-embed gateway --triton HOST:GRPC_PORT`, its own process group, stopped
on exit). The same load generator sends the 300 SciFact test queries, one text per request, `--concurrency` in
flight, to
  raw      Triton's ensemble as KServe v2 HTTP JSON (POST /v2/models/M/infer: TEXT and ROLE "query", the outputs
           EMBEDDING and TOKEN_COUNT asked for as JSON: the request a tritonclient HTTP user sends, spelled in JSON)
  gateway  the gateway's OpenAI `/v1/embeddings` (`input_type: "query"`, float vectors as JSON)
alternating within each repeat (raw, gateway, raw, gateway, ...), so a drift in the machine's speed weighs on both.
The generator is light on CPU: one thread per request in flight, each with its own persistent http.client
connection, answers read whole but not decoded. Per phase it also counts the CPU seconds the gateway process, the
Triton process tree and the generator used, per request: where a 2-core machine's time goes.
Writes results/gateway_overhead.json and the table between the markers in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
SYSTEMS = ("raw", "gateway")
LABELS = {"raw": "raw Triton HTTP (KServe v2 JSON)", "gateway": "gateway (OpenAI /v1/embeddings)"}
BEGIN = "<!-- gateway_overhead:begin -->"
END = "<!-- gateway_overhead:end -->"
TARGET_RATIO = 0.9


# -- the requests ----------------------------------------------------------------------------------------------------
def raw_body(model: str, text: str) -> bytes:
    """KServe v2 JSON for the ensemble: one text as a query, the vectors and token counts asked for as JSON."""
    request = {
        "inputs": [
            {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [text]},
            {"name": "ROLE", "shape": [1, 1], "datatype": "BYTES", "data": ["query"]},
        ],
        "outputs": [{"name": "EMBEDDING"}, {"name": "TOKEN_COUNT"}],
    }
    return json.dumps(request).encode()


def gateway_body(model: str, text: str) -> bytes:
    return json.dumps({"model": model, "input": text, "input_type": "query", "encoding_format": "float"}).encode()


def raw_vector(answer: bytes) -> np.ndarray:
    outputs = {o["name"]: o for o in json.loads(answer)["outputs"]}
    return np.asarray(outputs["EMBEDDING"]["data"], dtype=np.float32)


def gateway_vector(answer: bytes) -> np.ndarray:
    return np.asarray(json.loads(answer)["data"][0]["embedding"], dtype=np.float32)


@dataclass(frozen=True)
class Target:
    """Where one system's requests go: host:port, the path, and the body of each text."""

    system: str
    address: str
    path: str
    bodies: tuple[bytes, ...]


# -- the load generator ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Phase:
    """One system's pass: requests, wall seconds, latencies, and CPU seconds per request of each process."""

    system: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    cpu_ms: dict[str, float]  # process -> CPU milliseconds per request (gateway, triton, generator, others)
    busiest_others: tuple[str, ...] = ()  # the other processes that used the most CPU meanwhile

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def drive(target: Target, concurrency: int, seconds: float | None) -> tuple[float, list[float]]:
    """Send every body once (or cycle them for `seconds`), `concurrency` in flight: wall seconds, latencies ms."""
    host, port = target.address.rsplit(":", 1)
    headers = {"Content-Type": "application/json"}
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    total = len(target.bodies)
    deadline = [0.0]

    def more(i: int) -> bool:
        return time.perf_counter() < deadline[0] if seconds else i < total

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        mine = latencies[slot]
        try:
            while not errors:
                i = next(counter)
                if not more(i):
                    return
                begin = time.perf_counter()
                connection.request("POST", target.path, target.bodies[i % total], headers)
                response = connection.getresponse()
                answer = response.read()
                mine.append((time.perf_counter() - begin) * 1000.0)
                if response.status != 200:
                    errors.append(f"{target.system}: HTTP {response.status}: {answer[:300]!r}")
        except Exception as error:
            errors.append(f"{target.system}: {type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(concurrency)]
    start = time.perf_counter()
    deadline[0] = start + (seconds or 0.0)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return wall, [ms for slot in latencies for ms in slot]


class CpuMeter:
    """CPU seconds of process trees (by root pid) and of everything else readable, over a window."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = roots
        self.last_others: dict[int, float] = {}

    def snapshot(self) -> dict[str, float]:
        from .machine import _descendants, _processes

        processes = _processes()
        used: dict[str, float] = {}
        claimed: set[int] = set()
        for name, root in self.roots.items():
            tree = _descendants(root, processes) - claimed
            if name == "generator":
                tree = {root}  # this process alone: its children are the servers, counted on their own
            claimed |= tree
            used[name] = sum(processes[p][1] for p in tree if p in processes)
        used["others"] = sum(cpu for pid, (_, cpu) in processes.items() if pid not in claimed)
        self.last_others = {pid: cpu for pid, (_, cpu) in processes.items() if pid not in claimed}
        return used

    def top_others(self, before: dict[int, float], after: dict[int, float], count: int = 3) -> list[str]:
        """The other processes that used the most CPU between two snapshots: 'name pid seconds'."""
        spent = sorted(((cpu - before.get(pid, 0.0), pid) for pid, cpu in after.items()), reverse=True)[:count]
        return [f"{_name(pid)} {pid} {seconds:.2f}s" for seconds, pid in spent if seconds > 0.05]


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def measure(target: Target, concurrency: int, seconds: float | None, meter: CpuMeter) -> Phase:
    before = meter.snapshot()
    others_before = meter.last_others
    wall, latencies = drive(target, concurrency, seconds)
    after = meter.snapshot()
    busiest = meter.top_others(others_before, meter.last_others)
    n = len(latencies)
    cpu = {name: (after[name] - before[name]) * 1000.0 / n for name in after}
    return Phase(
        target.system,
        n,
        wall,
        float(np.percentile(latencies, 50)),
        float(np.percentile(latencies, 95)),
        {k: round(v, 3) for k, v in cpu.items()},
        tuple(busiest),
    )


# -- the gateway process ---------------------------------------------------------------------------------------------
def gateway_command(triton_grpc: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """`instruct-embed gateway`, the console script beside this interpreter (else the module)."""
    script = Path(sys.executable).parent / "instruct-embed"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "instruct_embed.cli"]
    return [*head, "gateway", "--host", "127.0.0.1", "--port", str(port), "--triton", triton_grpc, *extra]


@contextlib.contextmanager
def running_gateway(triton_grpc: str, log: Path, extra: Sequence[str] = ()) -> Iterator[tuple[str, int]]:
    """The gateway in its own process group; yields (host:port, pid); the group is stopped on exit."""
    from instruct_embed.server.process import free_port, port_is_free

    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            gateway_command(triton_grpc, port, extra), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited ({process.returncode}): {log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):  # anything its group still holds
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not port_is_free("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.2)


# -- the summary -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    system: str
    texts_per_s: tuple[float, ...]  # one per repeat
    p50_ms: tuple[float, ...]
    p95_ms: tuple[float, ...]
    cpu_ms: dict[str, float]  # medians over repeats: CPU milliseconds per request, per process

    @property
    def median(self) -> float:
        return statistics.median(self.texts_per_s)


def summarise(phases: Sequence[Phase]) -> dict[str, Summary]:
    out = {}
    for system in SYSTEMS:
        mine = [p for p in phases if p.system == system]
        if not mine:
            continue
        names = sorted({k for p in mine for k in p.cpu_ms})
        out[system] = Summary(
            system,
            tuple(round(p.throughput, 2) for p in mine),
            tuple(round(p.p50_ms, 2) for p in mine),
            tuple(round(p.p95_ms, 2) for p in mine),
            {k: round(statistics.median(p.cpu_ms.get(k, 0.0) for p in mine), 3) for k in names},
        )
    return out


def ratio(summaries: dict[str, Summary]) -> float:
    return summaries["gateway"].median / summaries["raw"].median


def path_cpu_ms(summary: Summary) -> float:
    """CPU milliseconds one request costs on its whole path: gateway (if any), Triton and the generator."""
    return sum(summary.cpu_ms.get(k, 0.0) for k in ("gateway", "triton", "generator"))


def cpu_bound_ratio(summaries: dict[str, Summary]) -> float:
    """The ratio a machine saturated by these processes gives: raw path CPU / gateway path CPU per request. Other
    tenants' load, which shifts the measured throughputs phase by phase, does not enter it."""
    return path_cpu_ms(summaries["raw"]) / path_cpu_ms(summaries["gateway"])


def table(summaries: dict[str, Summary]) -> str:
    """Markdown: texts/s (median and each repeat), latency medians, CPU ms per request by process, the ratio."""
    lines = [
        "| system | texts/s (median) | repeats | p50 ms | p95 ms | CPU ms/request: gateway / Triton / generator |",
        "|---|---:|---|---:|---:|---|",
    ]
    for system in SYSTEMS:
        s = summaries.get(system)
        if s is None:
            continue
        cpu = " / ".join(f"{s.cpu_ms.get(k, 0.0):.2f}" for k in ("gateway", "triton", "generator"))
        lines.append(
            f"| {LABELS[system]} | {s.median:.1f} | {', '.join(f'{v:.1f}' for v in s.texts_per_s)} | "
            f"{statistics.median(s.p50_ms):.1f} | {statistics.median(s.p95_ms):.1f} | {cpu} |"
        )
    if "raw" in summaries and "gateway" in summaries:
        value = ratio(summaries)
        verdict = "meets" if value >= TARGET_RATIO else "below"
        lines.append("")
        lines.append(f"gateway / raw = **{value:.3f}** ({verdict} the {TARGET_RATIO} target)")
        lines.append("")
        lines.append(
            f"CPU-bound ratio (path CPU ms per request, raw {path_cpu_ms(summaries['raw']):.2f} / gateway "
            f"{path_cpu_ms(summaries['gateway']):.2f}) = **{cpu_bound_ratio(summaries):.3f}**"
        )
    return "\n".join(lines)


def replace_between_markers(text: str, block: str, begin: str = BEGIN, end: str = END) -> str:
    """`text` with what lies between the markers replaced by `block` (the markers appended when absent)."""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        return f"{head}{begin}\n{block}\n{end}{tail}"
    return f"{text.rstrip()}\n\n{begin}\n{block}\n{end}\n"


# -- the run ---------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--repeats", type=int, default=3, help="alternating raw / gateway pairs; medians reported")
    parser.add_argument(
        "--seconds", type=float, default=None, help="each phase cycles the queries this long (default: one pass)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the server's ORT threads")
    parser.add_argument(
        "--gateway-arg", action="append", default=[], help="extra argument for `instruct-embed gateway` (repeatable)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "gateway_overhead.json")
    parser.add_argument("--readme", type=Path, default=README, help="README whose marked table is rewritten")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    parser.add_argument("--tag", default="", help="a label stored with the results (e.g. before / after)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.concurrency < 1:
        parser.error("--repeats and --concurrency must be at least 1")
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def check_same_vectors(raw: Target, gateway: Target) -> float:
    """Both systems embed the first query to the same vector (a benchmark of two different answers is void)."""
    vectors = []
    for target, read in ((raw, raw_vector), (gateway, gateway_vector)):
        host, port = target.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        connection.request("POST", target.path, target.bodies[0], {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"{target.system}: HTTP {response.status}: {answer[:300]!r}")
        vectors.append(read(answer))
    a, b = vectors
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from .machine import describe_load, load_average, machine, versions
    from .serving import BenchServer, Variant, tuned_serving
    from .texts import load_texts

    args = parse_args(argv)
    queries = load_texts(max_docs=1).queries
    root = BENCH_DIR.parent / ".cache" / "bench" / "repositories"
    root.mkdir(parents=True, exist_ok=True)
    load_start = describe_load(load_average())
    print(f"{machine()}; load average {load_start}; {len(queries)} SciFact test queries")
    phases: list[Phase] = []
    variant = Variant(f"gateway-{args.model}", args.model, tuned_serving(args.threads))
    with BenchServer(variant, root) as server:
        triton = server._running()
        assert triton.process is not None
        log = root / f"gateway-{args.model}.gateway.log"
        with running_gateway(server.grpc_url, log, args.gateway_arg) as (address, gateway_pid):
            path = f"/v2/models/{args.model}/infer"
            raw = Target("raw", server.http_url, path, tuple(raw_body(args.model, q) for q in queries))
            gateway = Target("gateway", address, "/v1/embeddings", tuple(gateway_body(args.model, q) for q in queries))
            cosine = check_same_vectors(raw, gateway)
            print(f"  same query, both paths: cosine {cosine:.6f}")
            meter = CpuMeter({"generator": os.getpid(), "gateway": gateway_pid, "triton": triton.process.pid})
            warm: Callable[[Target], object] = lambda t: drive(  # noqa: E731
                replace_bodies(t, 4 * args.concurrency), args.concurrency, None
            )
            warm(raw)
            warm(gateway)
            for repeat in range(args.repeats):
                for target in (raw, gateway) if repeat % 2 == 0 else (gateway, raw):
                    phase = measure(target, args.concurrency, args.seconds, meter)
                    phases.append(phase)
                    cpu = ", ".join(f"{k} {v:.2f}" for k, v in phase.cpu_ms.items())
                    print(
                        f"  repeat {repeat + 1} {target.system:>8}: {phase.throughput:7.1f} texts/s, "
                        f"p50 {phase.p50_ms:.1f} ms, p95 {phase.p95_ms:.1f} ms; CPU ms/request: {cpu}"
                        + (f"; busiest others: {', '.join(phase.busiest_others)}" if phase.busiest_others else "")
                    )
    summaries = summarise(phases)
    block = table(summaries)
    print(block)
    context = {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "machine": machine(),
        "load_start": load_start,
        "load_end": describe_load(load_average()),
        "model": args.model,
        "queries": len(queries),
        "concurrency": args.concurrency,
        "repeats": args.repeats,
        "seconds": args.seconds,
        "gateway_args": args.gateway_arg,
        "tag": args.tag,
        "cosine": cosine,
        "serving": repr(variant.serving),
        "command": "python -m benchmarks.gateway_overhead " + " ".join(sys.argv[1:] if argv is None else argv),
        "versions": versions((*_packages(),)),
    }
    result = {
        "context": context,
        "ratio": ratio(summaries),
        "cpu_bound_ratio": cpu_bound_ratio(summaries),
        "summaries": {k: {**asdict(v), "median": v.median} for k, v in summaries.items()},
        "phases": [{**asdict(p), "throughput": p.throughput} for p in phases],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_readme:
        stamp = (
            f"{args.model}, {len(queries)} SciFact queries, 1 text per request, {args.concurrency} in flight, "
            f"{args.repeats} alternating repeats, {context['date']}, load average {load_start} -> "
            f"{context['load_end']} (`{context['command']}`)"
        )
        args.readme.write_text(replace_between_markers(args.readme.read_text(), f"{stamp}\n\n{block}"))
    print(f"wrote {args.out}")
    return 0


def replace_bodies(target: Target, count: int) -> Target:
    """`target` with only its first `count` bodies (the warm-up)."""
    return Target(target.system, target.address, target.path, target.bodies[:count])


def _packages() -> tuple[str, ...]:
    return ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "orjson", "grpcio", "tritonclient")


if __name__ == "__main__":
    raise SystemExit(main())
