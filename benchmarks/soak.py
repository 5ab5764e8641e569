"""Soak on loopback: about twice the server's capacity for minutes, then back to normal.

Phases, with open-loop arrivals (a slow server does not slow the offered load down):
  calibrate  a closed loop of `concurrency` workers: the capacity, in requests per second
  normal     half the capacity: the latency of a healthy server
  overload   twice the capacity: the queues fill and the excess is refused at once (UNAVAILABLE); the SDK
             retries with backoff, then gives up with ServerUnavailable
  recovery   half the capacity again: no refusals once the queues have drained
Every answer is compared with the reference vector of each of its texts (embedded one by one on the idle server
first): a cosine below 0.9999 is a wrong vector. Memory is the resident set of tritonserver and its Python stubs
(/proc). Traffic goes only to the server this run starts on 127.0.0.1, and stops when the phases end.

`python -m benchmarks.soak [--overload-s 150] [--write-doc docs/reliability.md]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instruct_embed.client import AsyncEmbedClient, EmbedError, ServerUnavailable
from instruct_embed.repository.configs import ServingOptions

from .machine import describe_load, load_average, machine, wait_for_quiet
from .serving import BenchServer, Variant

MODEL = "multilingual-e5-small"
WRONG_BELOW = 0.9999  # cosine to the reference: batching and padding move a vector by ~1e-6, never this far
DOC_BEGIN, DOC_END = "<!-- soak:begin -->", "<!-- soak:end -->"
WORDS = (
    *("mountain", "river", "protein", "winter", "aurora", "summit", "capital", "museum", "library", "engine"),
    *("battery", "ocean", "forest", "glacier", "harvest", "market", "violin", "theorem", "bridge", "planet"),
    *("vaccine", "rainfall", "desert", "harbour", "castle", "railway", "orbit", "pigment"),
)


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    load: float  # offered load as a multiple of the capacity; 0: the closed-loop calibration


@dataclass(frozen=True)
class Settings:
    calibrate_s: float = 15.0
    normal_s: float = 20.0
    overload_s: float = 150.0
    recovery_s: float = 30.0
    overload: float = 2.0  # times the capacity
    concurrency: int = 16  # calibration workers
    max_outstanding: int = 1024  # the generator's own bound; requests past it are counted as dropped
    retries: int = 2  # the SDK's, per request
    texts_per_request: tuple[int, int] = (1, 4)
    seed: int = 0

    def phases(self) -> list[Phase]:
        return [
            Phase("calibrate", self.calibrate_s, 0.0),
            Phase("normal", self.normal_s, 0.5),
            Phase("overload", self.overload_s, self.overload),
            Phase("recovery", self.recovery_s, 0.5),
        ]


@dataclass
class Outcome:
    phase: str
    kind: str  # ok | wrong | refused | error | dropped
    latency_s: float
    texts: int
    detail: str = ""
    sent_at: float = 0.0
    done_at: float = field(default_factory=time.perf_counter)


@dataclass
class Report:
    when: str
    machine: str
    load_average: dict[str, str]
    serving: dict[str, Any]
    capacity_rps: float
    phases: list[dict[str, Any]]
    memory_mb: dict[str, float]
    totals: dict[str, int] = field(default_factory=dict)


def text_pool(seed: int) -> list[tuple[str, str]]:
    """(role, text): mostly short queries (about 10 tokens), then medium and a few long documents (60, 250)."""
    rng = np.random.default_rng(seed)
    kinds = [("query", 6)] * 32 + [("document", 40)] * 12 + [("document", 170)] * 4
    return [(role, f"{i}: " + " ".join(rng.choice(WORDS, size=words))) for i, (role, words) in enumerate(kinds)]


class Load:
    """Sends requests of random pool texts through the SDK and checks every vector against its reference."""

    def __init__(self, client: AsyncEmbedClient, pool: list[tuple[str, str]], settings: Settings) -> None:
        self.client = client
        self.pool = pool
        self.settings = settings
        self.rng = np.random.default_rng(settings.seed)
        self.references: dict[str, np.ndarray] = {}
        self.outcomes: list[Outcome] = []
        self.outstanding: set[asyncio.Task[None]] = set()
        self.retried: dict[str, int] = {}  # refused attempts the SDK retried, by the phase running at the time
        self.windows: dict[str, tuple[float, float]] = {}  # phase -> (first, last) send time
        self.phase = ""

    def count_retry(self, error: ServerUnavailable) -> None:
        self.retried[self.phase] = self.retried.get(self.phase, 0) + 1

    async def embed_references(self) -> None:
        for role, text in self.pool:
            self.references[text] = (await self.client.encode(MODEL, [text], role=role))[0]

    def _pick(self) -> tuple[str, list[str]]:
        role = "query" if self.rng.random() < 0.6 else "document"
        candidates = [t for r, t in self.pool if r == role]
        low, high = self.settings.texts_per_request
        count = int(self.rng.integers(low, high + 1))
        return role, [candidates[int(i)] for i in self.rng.integers(0, len(candidates), size=count)]

    async def one(self, phase: str) -> None:
        role, texts = self._pick()
        started = time.perf_counter()
        try:
            vectors = await self.client.encode(MODEL, texts, role=role)
        except ServerUnavailable as error:
            self._record(phase, "refused", started, len(texts), str(error))
            return
        except EmbedError as error:
            self._record(phase, "error", started, len(texts), str(error))
            return
        worst = min(float(np.dot(v, self.references[t])) for v, t in zip(vectors, texts, strict=True))
        kind = "ok" if worst >= WRONG_BELOW else "wrong"
        self._record(phase, kind, started, len(texts), "" if kind == "ok" else f"cosine {worst}")

    def _record(self, phase: str, kind: str, started: float, texts: int, detail: str) -> None:
        self.outcomes.append(Outcome(phase, kind, time.perf_counter() - started, texts, detail, started))

    async def closed_loop(self, phase: Phase) -> float:
        """`concurrency` workers back to back for `phase.seconds`; returns completed requests per second.

        Only the second half counts: the first warms the server up (new shapes, first batches).
        """
        self.phase = phase.name
        deadline = time.perf_counter() + phase.seconds
        half = deadline - phase.seconds / 2
        self.windows[phase.name] = (time.perf_counter(), deadline)

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await self.one(phase.name)

        await asyncio.gather(*(worker() for _ in range(self.settings.concurrency)))
        done = [o for o in self.outcomes if o.phase == phase.name and o.kind in ("ok", "wrong") and o.done_at >= half]
        return len(done) / (time.perf_counter() - half)

    async def open_loop(self, phase: Phase, rate: float) -> None:
        """Poisson arrivals at `rate` per second for `phase.seconds`; stragglers finish in the background."""
        self.phase = phase.name
        deadline = time.perf_counter() + phase.seconds
        next_at = time.perf_counter()
        self.windows[phase.name] = (next_at, deadline)
        while next_at < deadline:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            if len(self.outstanding) >= self.settings.max_outstanding:
                self.outcomes.append(Outcome(phase.name, "dropped", 0.0, 0, sent_at=next_at))
            else:
                task = asyncio.create_task(self.one(phase.name))
                self.outstanding.add(task)
                task.add_done_callback(self.outstanding.discard)
            next_at += float(self.rng.exponential(1.0 / rate))

    async def drain(self) -> None:
        if self.outstanding:
            await asyncio.gather(*self.outstanding)


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.asarray(values) * 1000.0
    return {k: round(float(np.percentile(ms, q)), 1) for k, q in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}


def summarize(phase: Phase, load: Load, offered_rps: float) -> dict[str, Any]:
    mine = [o for o in load.outcomes if o.phase == phase.name]
    counts = {kind: sum(o.kind == kind for o in mine) for kind in ("ok", "wrong", "refused", "error", "dropped")}
    first, last = load.windows[phase.name]
    second_half = (first + last) / 2
    return {
        "phase": phase.name,
        "seconds": phase.seconds,
        "offered_rps": round(offered_rps, 1),
        "sent": len(mine) - counts["dropped"],
        **counts,
        # Every refused attempt: those the SDK retried, and the last one of each request it gave up on.
        "refused_attempts": load.retried.get(phase.name, 0) + counts["refused"],
        "refused_in_second_half": sum(o.kind == "refused" and o.sent_at >= second_half for o in mine),
        "ok_latency_ms": _percentiles([o.latency_s for o in mine if o.kind == "ok"]),
        "refused_latency_ms": _percentiles([o.latency_s for o in mine if o.kind == "refused"]),
        "errors": sorted({o.detail for o in mine if o.kind in ("error", "wrong")})[:5],
    }


async def _sample_memory(server_pid: int, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    from instruct_embed.server.stubs import server_rss_bytes

    started = time.perf_counter()
    while not stop.is_set():
        samples.append((time.perf_counter() - started, sum(server_rss_bytes(server_pid).values()) / 2**20))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)


async def soak(grpc_url: str, server_pid: int, settings: Settings) -> tuple[float, list[dict], dict]:
    """Run the phases against a started server; returns (capacity, phase summaries, memory in MB)."""
    memory: list[tuple[float, float]] = []
    marks: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_memory(server_pid, memory, stop))
    summaries = []
    async with AsyncEmbedClient(grpc_url, "grpc", retries=settings.retries, backoff_s=0.1, concurrency=1) as client:
        load = Load(client, text_pool(settings.seed), settings)
        client.on_retry = load.count_retry
        await load.embed_references()
        capacity = 0.0
        for phase in settings.phases():
            if phase.load == 0:
                capacity = await load.closed_loop(phase)
            else:
                await load.open_loop(phase, capacity * phase.load)
            if phase.name == "recovery":
                await load.drain()
            marks[phase.name] = memory[-1][1] if memory else 0.0
        for phase in settings.phases():
            summaries.append(summarize(phase, load, capacity * phase.load if phase.load else capacity))
    stop.set()
    await sampler
    peak = max(mb for _, mb in memory)
    megabytes = {
        "after_calibration": round(marks["calibrate"], 1),
        "after_normal": round(marks["normal"], 1),
        "peak": round(peak, 1),
        "end": round(memory[-1][1], 1),
        "growth_after_normal": round(memory[-1][1] - marks["normal"], 1),
    }
    return capacity, summaries, megabytes


def run(settings: Settings, serving: ServingOptions = ServingOptions(), root: Path | None = None) -> Report:
    """Start a server with `serving` (multilingual-e5-small) on free loopback ports, soak it, stop it."""
    start_load = load_average()
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        variant = Variant("soak", MODEL, serving)
        with BenchServer(variant, root or Path(scratch)) as bench:
            server = bench.server
            assert server is not None and server.process is not None
            capacity, phases, memory = asyncio.run(soak(bench.grpc_url, server.process.pid, settings))
    totals = {k: sum(p[k] for p in phases) for k in ("sent", "ok", "wrong", "refused", "error", "dropped")}
    return Report(
        when=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=machine(),
        load_average={"start": describe_load(start_load), "end": describe_load(load_average())},
        serving={
            "max_batch_size": serving.max_batch_size,
            "max_queue_size": serving.max_queue_size,
            "queue_timeout_s": serving.queue_timeout_us / 1e6,
            "sdk_retries": settings.retries,
        },
        capacity_rps=round(capacity, 1),
        phases=phases,
        memory_mb=memory,
        totals=totals,
    )


def markdown(report: Report) -> str:
    rows = [
        "| phase | seconds | offered req/s | sent | ok | wrong | errors | refused attempts | requests refused after "
        "retries (in 2nd half) | ok latency p50 / p99 / max (ms) | refusal latency p50 / max (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p in report.phases:
        ok, refused = p["ok_latency_ms"], p["refused_latency_ms"]
        ok_text = f"{ok['p50']} / {ok['p99']} / {ok['max']}" if ok else "-"
        refused_text = f"{refused['p50']} / {refused['max']}" if refused else "-"
        rows.append(
            f"| {p['phase']} | {p['seconds']:.0f} | {p['offered_rps']} | {p['sent']} | {p['ok']} | {p['wrong']} | "
            f"{p['error']} | {p['refused_attempts']} | {p['refused']} ({p['refused_in_second_half']}) | {ok_text} | "
            f"{refused_text} |"
        )
    m, s = report.memory_mb, report.serving
    return "\n".join(
        [
            f"Last run: {report.when}, {report.machine}; load average {report.load_average['start']} at the start, "
            f"{report.load_average['end']} at the end. Server: multilingual-e5-small, max_batch_size "
            f"{s['max_batch_size']}, max_queue_size {s['max_queue_size']}, queue timeout {s['queue_timeout_s']:.0f} s; "
            f"SDK retries {s['sdk_retries']} (backoff 0.1 s doubling, with jitter). Capacity (closed loop, 16 "
            f"workers, 1-4 texts per request): {report.capacity_rps} requests/s.",
            "",
            *rows,
            "",
            f"Wrong vectors: {report.totals['wrong']} of {report.totals['ok'] + report.totals['wrong']} answers. "
            f"Other errors: {report.totals['error']}. Memory (tritonserver + stubs, RSS): {m['after_calibration']} MB "
            f"after calibration, {m['after_normal']} MB after the normal phase, peak {m['peak']} MB, {m['end']} MB "
            f"at the end ({m['growth_after_normal']:+} MB since the normal phase).",
        ]
    )


def write_doc(path: Path, report: Report) -> None:
    """Replace the text between the soak markers of `path` with the report's table."""
    document = path.read_text()
    pattern = re.compile(re.escape(DOC_BEGIN) + r".*?" + re.escape(DOC_END), re.S)
    if not pattern.search(document):
        raise SystemExit(f"{path} has no {DOC_BEGIN} ... {DOC_END} section")
    path.write_text(pattern.sub(lambda _: f"{DOC_BEGIN}\n{markdown(report)}\n{DOC_END}", document))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Settings()
    parser.add_argument("--calibrate-s", type=float, default=defaults.calibrate_s)
    parser.add_argument("--normal-s", type=float, default=defaults.normal_s)
    parser.add_argument("--overload-s", type=float, default=defaults.overload_s, help="seconds at --overload")
    parser.add_argument("--recovery-s", type=float, default=defaults.recovery_s)
    parser.add_argument("--overload", type=float, default=defaults.overload, help="offered load, times capacity")
    parser.add_argument("--json", type=Path, default=Path(".cache/soak/last.json"), help="where the report goes")
    parser.add_argument("--write-doc", type=Path, help="replace the soak section of this markdown file")
    parser.add_argument("--wait-quiet", action="store_true", help="wait (up to 10 min) for a quiet machine first")
    args = parser.parse_args(argv)
    if args.wait_quiet:
        wait_for_quiet()
    settings = Settings(
        calibrate_s=args.calibrate_s,
        normal_s=args.normal_s,
        overload_s=args.overload_s,
        recovery_s=args.recovery_s,
        overload=args.overload,
    )
    report = run(settings)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(asdict(report), indent=1) + "\n")
    print(markdown(report))
    if args.write_doc:
        write_doc(args.write_doc, report)
    return 0 if report.totals["wrong"] == 0 and report.totals["error"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
