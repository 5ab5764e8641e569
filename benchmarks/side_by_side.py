"""`make bench`: our server against the in-process limit and sentence-transformers, one run, same machine.

    python -m benchmarks.side_by_side [--models M ...] [--docs N] [--repeats 3] [--quick]

Same model, same texts (SciFact), same thread count for every system; each number is the median of `--repeats`
runs and the ratios to the issue's targets are in one table. Scenarios, per model:
  online    the 300 test queries, 1 text per request, 16 in flight, through the SDK (vs the same stream embedded
            in-process in one call: length-sorted, token-budgeted: the optimum; and, for context, in-process 16
            at a time, all that 16 requests in flight ever show)
  bulk      a fixed subset of the corpus through the SDK's bulk path; padding efficiency from the server's /metrics
  priority  query p95 while document requests saturate the server, query priority on vs off (two repositories)
  ceiling   the null encoder (no model) under perf_analyzer, short queries over gRPC, 16 in flight
  cache     the 300 queries repeated under perf_analyzer, with and without Triton's response cache
  tokenizer tokens/s of one preprocess instance (the server's Preprocessor, one thread)
  bursts    bursts of 16 one-text queries on an idle server: requests left behind in a queue (the "Stalls")
Within each repeat of online and bulk, the server, the in-process limit, sentence-transformers and infinity-emb
(another embedding server, from its own environment: `make bench-peers`; `--no-infinity` leaves it out) run in
turn, so a drift in the machine's speed during the run weighs on every system alike.
Writes results/side_by_side.json and results/side_by_side.md (tables) under benchmarks/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from instruct_embed.runtime.graph_sessions import AUTO, BF16, FP32

from .in_process import InProcessOrt, InWindows
from .peers import INFINITY_VENV
from .ratios import INFINITY, Measurement, measurements_table, ratio_rows, ratio_table, save

T = TypeVar("T")
BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")
# One encoder run's padded tokens, tuned per precision on this machine: bf16 (AMX) runs need more rows to pay off.
TUNED_TOKEN_BUDGET = {"fp32": 512, "bf16": 2048}
ST_BF16 = "sentence-transformers bf16"  # PyTorch autocast, measured beside a bf16 server
SCENARIOS = ("online", "bulk", "priority", "ceiling", "cache", "tokenizer", "bursts")
# A burst during which no answer came for this long had requests waiting on an idle server: Triton's batcher sleeps
# up to 500 ms; computing answers come one execute apart (16 one-text queries: <= ~130 ms here).
STALL_SILENCE_MS = 300.0


def serving_options(args: argparse.Namespace, **changes: Any):
    """The tuned CPU configuration (serving.tuned_serving) with the command line's changes."""
    from .serving import tuned_serving

    options = tuned_serving(
        args.threads,
        args.encoder_instances,
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.queue_delay_us,
        token_budget=args.token_budget,
        ort_allow_spinning=args.spinning,
        preprocess_instances=args.preprocess_instances,
        cpu_precision=args.cpu_precision,
    )
    return replace(options, **changes)  # prepare names an auto-resolved precision "pinned" (the harness resolved it)


def infinity_peer(args: argparse.Namespace, model: str, hf_dir: Path):
    """The infinity-emb peer for `model` (not started), or None, said in one line, when it is left out: by
    `--no-infinity`, or because its environment is missing."""
    from .peers import InfinityServer, infinity_missing

    if args.no_infinity:
        print("  infinity-emb: left out (--no-infinity)")
        return None
    missing = infinity_missing(args.infinity_venv)
    if missing:
        print(f"  {missing}")
        return None
    return InfinityServer(model, hf_dir, args.threads, batch_size=args.infinity_batch, venv=args.infinity_venv)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    from instruct_embed.export.validate import cosine_rows

    return float(np.min(cosine_rows(a, b)))


class Run:
    """Collects measurements for one model; each scenario is a method."""

    def __init__(self, args: argparse.Namespace, model: str, texts, root: Path) -> None:
        self.args, self.model, self.texts, self.root = args, model, texts, root
        self.found: list[Measurement] = []
        self.vectors: dict[str, np.ndarray] = {}
        self.foreign: list[float] = []  # cores other people's processes used during each kept repeat

    def guarded(self, run: Callable[[], T]) -> tuple[T, float]:
        """`run()` while no one else uses the cores, and the cores others used meanwhile: waits for idle cores,
        and runs it again (up to --retries times) when other processes used more than --foreign-max cores. The
        load average would count this benchmark itself, so the guard counts only processes outside its tree."""
        from .machine import ForeignCpu, wait_for_idle

        a = self.args
        for attempt in range(a.retries + 1):
            wait_for_idle(a.foreign_max, a.quiet_timeout_s)
            probe = ForeignCpu().start()
            value = run()
            foreign = probe.cores()
            if foreign <= a.foreign_max or attempt == a.retries:
                return value, foreign
            print(f"    other processes used {foreign:.2f} cores meanwhile: measuring again")
        raise AssertionError("unreachable")

    def clean(self, run: Callable[[], T]) -> T:
        """guarded(run)'s value; the cores others used go to the next add()'s note."""
        value, foreign = self.guarded(run)
        self.foreign.append(foreign)
        return value

    def timed(self, repeats: int, run: Callable[[], object]) -> list[float]:
        """Seconds per run, each run guarded by clean()."""

        def once() -> float:
            start = time.perf_counter()
            run()
            return time.perf_counter() - start

        return [self.clean(once) for _ in range(repeats)]

    def add(
        self,
        scenario: str,
        system: str,
        unit: str,
        values: Sequence[float],
        note: str = "",
        foreign: Sequence[float] | None = None,
    ) -> None:
        """Record a measurement; `foreign`: cores others used per repeat (default: those clean() collected)."""
        if foreign is None:
            foreign, self.foreign = self.foreign, []
        if foreign:
            note = f"{note}; others used <= {max(foreign):.2f} cores".lstrip("; ")
        m = Measurement(self.model, scenario, system, unit, tuple(float(v) for v in values), note)
        self.found.append(m)
        print(f"  {scenario:>12} | {system:<28} {m.median:10.4g} {unit}  ({', '.join(f'{v:.4g}' for v in values)})")

    # -- throughput: the server, the in-process limit and sentence-transformers, in turn --------------------
    def throughput(self) -> None:
        """online and bulk. Within each repeat every system runs once, one after the other, so a change in the
        machine's speed during the run (other tenants of the host, thermal limits) falls on all systems alike
        instead of on whichever system happened to run last. The server stays up, idle, while the others run."""
        from .in_process import SentenceTransformersBaseline
        from .peers import PeerError
        from .serving import BenchServer, Variant

        a = self.args
        variant = Variant(f"sbs-{self.model}", self.model, serving_options(a))
        with BenchServer(variant, self.root) as server, contextlib.ExitStack() as peers:
            assert server.onnx is not None, "the side-by-side variants serve an ONNX graph"
            self.hf_dir, self.onnx = server.hf_dir, server.onnx
            url = server.url(a.protocol)
            # infinity-emb stays up, idle, while the others run (it uses no CPU while idle), as the server does.
            infinity = infinity_peer(a, self.model, self.hf_dir) if {"online", "bulk"} & set(a.scenarios) else None
            if infinity is not None:
                try:
                    peers.enter_context(infinity)
                    print(f"  {infinity.label} on {infinity.url}")
                except PeerError as error:
                    print(f"  infinity-emb is not measured: it did not start: {str(error).splitlines()[0]}")
                    infinity = None
            # The in-process limit: the fastest of a grid of layouts and plans, chosen per scenario on a
            # calibration subset, then measured like every other system.
            ort_for = {s: self.ort(*self.calibrate(s)) for s in ("online", "bulk") if s in a.scenarios}
            torch_st = SentenceTransformersBaseline(self.model, self.hf_dir, a.threads, batch_size=a.st_batch)
            if "online" in a.scenarios:
                window = InWindows(self.ort(*self.calibrate("online", window=a.concurrency)), a.concurrency)
                self._online(url, ort_for["online"], window, torch_st, infinity)
            if "bulk" in a.scenarios:
                # A bf16 server is also compared with PyTorch's own bf16 (autocast): like for like.
                torch_bf16 = (
                    SentenceTransformersBaseline(
                        self.model, self.hf_dir, a.threads, batch_size=a.st_batch, bf16_autocast=True
                    )
                    if a.cpu_precision == "bf16"
                    else None
                )
                self._bulk(server, url, ort_for["bulk"], torch_st, torch_bf16, infinity)
            del torch_st
            gc.collect()
        if "server" in self.vectors:
            for system in ("in-process ORT", "sentence-transformers", ST_BF16, INFINITY):
                if system in self.vectors:
                    cosine = _min_cosine(self.vectors["server"], self.vectors[system])
                    self.add("agreement", f"server vs {system}", "min cosine", [cosine], "same documents")
        if "tokenizer" in a.scenarios:
            self.tokenizer(next(iter(ort_for.values()), None) or self.ort())

    def _in_turn(self, runners: dict[str, Callable[[], Any]]) -> dict[str, list[tuple[Any, float]]]:
        """Each runner once per repeat, in turn: {system: [(result, cores others used), ...]}."""
        results: dict[str, list[tuple[Any, float]]] = {name: [] for name in runners}
        for _ in self.args.runs:
            for name, run in runners.items():
                results[name].append(self.guarded(run))
        return results

    def _add_in_turn(self, scenario: str, system: str, unit: str, runs: list[tuple[float, float]], note: str) -> None:
        self.add(scenario, system, unit, [value for value, _ in runs], note, [foreign for _, foreign in runs])

    def _online(self, url: str, ort: InProcessOrt, window: InWindows, torch_st, infinity=None) -> None:
        from . import load

        a, queries = self.args, self.texts.queries
        in_windows = f"in-process ORT, {window.window} at a time"
        for embedder in (ort, window, torch_st, *([infinity] if infinity else [])):
            embedder.embed(queries[:32], "query")  # warm-up

        def rate(embedder) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                embedder.embed(queries, "query")
                return len(queries) / (time.perf_counter() - start)

            return run

        def peer_stream() -> load.Stream:
            seconds, _ = infinity.online(queries, a.concurrency)
            return load.Stream(seconds, infinity.last_latencies_ms)

        runners: dict[str, Callable[[], Any]] = {
            "server": lambda: load.online_stream(url, a.protocol, self.model, queries, a.concurrency),
            "in-process ORT": rate(ort),
            in_windows: rate(window),
            "sentence-transformers": rate(torch_st),
        }
        if infinity is not None:
            runners[INFINITY] = peer_stream
        streams = self._in_turn(runners)
        note = f"SDK {a.protocol}, 1 text/request, {a.concurrency} in flight"
        served = streams.pop("server")
        self._add_in_turn("online", "server", "texts/s", [(s.throughput(), f) for s, f in served], note)
        p95 = [(float(np.percentile(s.latencies_ms, 95)), f) for s, f in served]
        self._add_in_turn("online p95", "server", "ms", p95, note)
        if infinity is not None:
            peer = streams.pop(INFINITY)
            peer_note = f"{infinity.label}; POST /embeddings, 1 text/request, {a.concurrency} in flight"
            self._add_in_turn("online", INFINITY, "texts/s", [(s.throughput(), f) for s, f in peer], peer_note)
            peer_p95 = [(float(np.percentile(s.latencies_ms, 95)), f) for s, f in peer]
            self._add_in_turn("online p95", INFINITY, "ms", peer_p95, peer_note)
        for system, embedder in (("in-process ORT", ort), (in_windows, window), ("sentence-transformers", torch_st)):
            self._add_in_turn("online", system, "texts/s", streams[system], embedder.label)

    def _bulk(self, server, url: str, ort: InProcessOrt, torch_st, torch_bf16=None, infinity=None) -> None:
        from . import load

        a, documents = self.args, self.texts.documents
        load.bulk(url, a.protocol, self.model, documents[: a.max_batch_size], a.bulk_concurrency)  # warm
        baselines = {"in-process ORT": ort, "sentence-transformers": torch_st}
        if torch_bf16 is not None:
            baselines[ST_BF16] = torch_bf16
        for embedder in baselines.values():
            embedder.embed(documents[:32], "document")
        efficiencies: list[float] = []

        def served() -> float:
            before = server.padding()
            seconds, self.vectors["server"] = load.bulk(url, a.protocol, self.model, documents, a.bulk_concurrency)
            efficiencies.append((server.padding() - before).efficiency)
            return len(documents) / seconds

        def rate(system: str, embedder) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                self.vectors[system] = embedder.embed(documents, "document")
                return len(documents) / (time.perf_counter() - start)

            return run

        def peer() -> float:
            seconds, self.vectors[INFINITY] = infinity.bulk(documents, a.infinity_batch, a.bulk_concurrency)
            return len(documents) / seconds

        runners: dict[str, Callable[[], Any]] = {"server": served}
        runners.update({system: rate(system, e) for system, e in baselines.items()})
        if infinity is not None:
            infinity.embed(documents[:32], "document")  # warm-up
            runners[INFINITY] = peer
        runs = self._in_turn(runners)
        note = f"SDK {a.protocol} bulk path, {a.bulk_concurrency} requests in flight"
        self._add_in_turn("bulk", "server", "texts/s", runs["server"], note)
        if infinity is not None:
            peer_note = (
                f"{infinity.label}; POST /embeddings, {a.infinity_batch} documents/request in input order, "
                f"{a.bulk_concurrency} in flight"
            )
            self._add_in_turn("bulk", INFINITY, "texts/s", runs[INFINITY], peer_note)
        self.add("padding", "server", "real/computed", efficiencies, "encoder's /metrics counters, bulk runs")
        self.add("padding", "in-process ORT", "real/computed", [ort.last_padding_efficiency], "its sub-batch plan")
        for system, embedder in baselines.items():
            self._add_in_turn("bulk", system, "texts/s", runs[system], embedder.label)

    def calibrate(self, scenario: str, window: int = 0) -> tuple[int, int, int]:
        """The fastest in-process ORT (sessions, token budget, run cost) for `scenario` on a subset (one run each);
        `window` > 0: given that many texts at a time (InWindows)."""
        a = self.args
        texts, role = (self.texts.queries, "query") if scenario == "online" else (self.texts.documents[:48], "document")
        # 16 queries hold ~450 tokens: only budgets below that give both sessions a share of a window.
        budgets = (128, 256, 512) if window else (512, 2048, 8192)
        grid = [(n, budget, cost) for n in sorted({1, a.threads}) for budget in budgets for cost in (0, 16)]
        rates = []
        for settings in grid:
            ort = self.ort(*settings)
            ort.embed(texts[:8], role)

            def run(o: InProcessOrt = ort) -> None:
                (InWindows(o, window) if window else o).embed(texts, role)

            (seconds,) = self.timed(1, run)
            rates.append(len(texts) / seconds)
        best = max(range(len(grid)), key=lambda i: rates[i])
        summary = "; ".join(
            f"{n}x{a.threads // n} threads, budget {budget}, cost {cost}: {rate:.3g}"
            for (n, budget, cost), rate in zip(grid, rates, strict=True)
        )
        name = f"calibration {scenario}" + (f", {window} at a time" if window else "")
        self.add(name, "in-process ORT", "texts/s", [rates[best]], summary)
        return grid[best]

    def ort(self, sessions: int = 1, token_budget: int = 8192, run_cost_tokens: int = 0) -> InProcessOrt:
        a = self.args
        return InProcessOrt(
            self.model,
            self.hf_dir,
            self.onnx,
            a.threads,
            token_budget=token_budget,
            max_rows=64,
            allow_spinning=a.spinning,
            sessions=sessions,
            run_cost_tokens=run_cost_tokens,
            precision=a.cpu_precision,
        )

    def tokenizer(self, ort) -> None:
        from .in_process import _column

        for role, texts in (("document", self.texts.documents), ("query", self.texts.queries)):
            tokens = int(ort.preprocessor(_column(texts), role=_column([role] * len(texts)))["TOKEN_COUNT"].sum())

            def tokenize(t: Sequence[str] = texts, r: str = role) -> None:
                ort.preprocessor(_column(t), role=_column([r] * len(t)))

            seconds = self.timed(self.args.repeats, tokenize)
            note = f"{role} texts, one preprocess instance, 1 thread (TOKENIZERS_PARALLELISM=false, as in the server)"
            self.add("tokenizer", f"Preprocessor, {role} texts", "tokens/s", [tokens / s for s in seconds], note)

    # -- query priority ---------------------------------------------------------------------------------------
    def priority(self) -> None:
        from . import load
        from .serving import BenchServer, Variant

        a = self.args
        probes = self.texts.queries[: a.probes]
        for levels, label in ((2, "priority on"), (0, "priority off")):
            options = serving_options(a, priority_levels=levels, max_batch_size=a.bulk_batch)
            variant = Variant(f"sbs-{self.model}-priority-{levels}", self.model, options)
            with BenchServer(variant, self.root) as server:
                url = server.url(a.protocol)

                def probe(u: str = url) -> load.UnderLoad:
                    documents = self.texts.documents
                    return load.queries_under_bulk_load(
                        u, a.protocol, self.model, documents, probes, a.bulk_requests, a.bulk_batch
                    )

                runs = [self.clean(probe) for _ in a.runs]
            note = (
                f"{len(probes)} queries one at a time while {a.bulk_requests} requests of {a.bulk_batch} documents "
                f"stay in flight; bulk ran {np.median([r.bulk_documents / r.seconds for r in runs]):.3g} docs/s"
            )
            self.add(label, "server", "ms", [r.p95() for r in runs], note)

    # -- bursts: requests left behind in a batcher's queue ------------------------------------------------------
    def bursts(self) -> None:
        from . import load
        from .serving import BenchServer, Variant, encoder_name_of, preprocess_name_of

        a = self.args
        variant = Variant(f"sbs-{self.model}-bursts", self.model, serving_options(a))
        with BenchServer(variant, self.root) as server:
            url = server.url(a.protocol)

            def bursts(u: str = url) -> load.Bursts:
                return load.query_bursts(u, a.protocol, self.model, self.texts.queries, a.concurrency, a.bursts)

            runs = [self.clean(bursts) for _ in a.runs]
            queued = {
                "preprocess": server.queue_ms(preprocess_name_of(self.model)),
                "encoder": server.queue_ms(encoder_name_of(self.model)),
            }
        note = f"{a.bursts} bursts of {a.concurrency} one-text queries, SDK {a.protocol}"
        self.add(
            "bursts stalled",
            "server",
            "bursts",
            [r.stalled(STALL_SILENCE_MS) for r in runs],
            f"{note}; no answer for > {STALL_SILENCE_MS:.0f} ms while requests were outstanding",
        )
        self.add(
            "bursts slowest",
            "server",
            "ms",
            [float(np.median(r.worst_ms)) for r in runs],
            f"{note}; median over bursts of the slowest request",
        )
        for step, ms in queued.items():
            self.add(f"bursts {step} queue", "server", "ms", [ms], "mean wait per request, Triton's statistics")

    # -- perf_analyzer: the null-encoder ceiling and the response cache --------------------------------------
    def perf(self, scenario: str) -> None:
        from instruct_embed.repository.targets import EncoderTarget

        from .perf_analyzer import LoadPoint, PerfRow, PerfSettings, input_data, run_point
        from .serving import BenchServer, Variant

        a = self.args
        folder = self.root / "perf" / self.model
        folder.mkdir(parents=True, exist_ok=True)
        texts = self.texts.short_queries if scenario == "ceiling" else self.texts.queries
        data = folder / f"{scenario}.json"
        data.write_text(json.dumps(input_data(texts, "query"), ensure_ascii=False))
        point, settings = LoadPoint("concurrency", a.concurrency), PerfSettings(measurement_interval_ms=a.interval_ms)
        if scenario == "ceiling":
            cases = [("server null encoder", serving_options(a, target=EncoderTarget.NULL), 0)]
        else:
            cases = [
                ("server, cache off", serving_options(a), 0),
                ("server, response cache", serving_options(a, response_cache=True), 64 << 20),
            ]
        for system, options, cache_bytes in cases:
            variant = Variant(f"sbs-{self.model}-{scenario}-{bool(cache_bytes)}", self.model, options, cache_bytes)
            # Cache hits come back at >10,000 requests/s: windows of a fixed request count keep perf_analyzer's
            # own bookkeeping bounded (a time window never stabilised there for all-MiniLM-L6-v2).
            window = replace(settings, request_count_window=a.cache_window_requests) if cache_bytes else settings
            with BenchServer(variant, self.root) as server:
                url = server.url("grpc")

                def measure(u: str = url, w: PerfSettings = window) -> PerfRow:
                    return run_point(self.model, u, "grpc", scenario, data, point, folder, w)[0]

                guarded = [self.guarded(measure) for _ in a.runs]
            rows, foreign = [r for r, _ in guarded], [f for _, f in guarded]
            kind = "short queries" if scenario == "ceiling" else "queries, cycled"
            note = f"perf_analyzer gRPC, {len(texts)} {kind}, {a.concurrency} in flight"
            self.add(scenario, system, "req/s", [r.throughput for r in rows], note, foreign)
            self.add(f"{scenario} p95", system, "ms", [r.p95_ms for r in rows], note, foreign)


def write_report(measurements: Sequence[Measurement], context: dict[str, object], path: Path) -> Path:
    lines = [
        f"# Side-by-side run, {context['date']}",
        "",
        f"Machine: {context['machine']}. Load average (1/5/15 min): {context['load_start']} at the start, "
        f"{context['load_end']} at the end. Texts: {context['texts']}. Threads per system: {context['threads']}. "
        f"Medians of {context['repeats']} repeats.",
        "",
        f"Command: `{context['command']}`",
        "",
        f"Server configuration: `{context['serving']}`",
        "",
        "## Ratios against the targets",
        "",
        ratio_table(ratio_rows(measurements)),
        "",
        "## Every measurement",
        "",
        measurements_table(measurements),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in dict(context["versions"]).items()),  # type: ignore[call-overload]
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--docs", type=int, default=300, help="documents for bulk (a fixed subset; 0: all 5,183)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the table shows medians")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ORT and torch threads, every system")
    parser.add_argument("--protocol", default="grpc", choices=["grpc", "http"], help="the SDK's protocol")
    parser.add_argument("--concurrency", type=int, default=16, help="online requests in flight")
    parser.add_argument("--bulk-concurrency", type=int, default=4, help="bulk requests the SDK keeps in flight")
    parser.add_argument("--max-batch-size", type=int, default=16, help="the served models' max_batch_size")
    parser.add_argument("--queue-delay-us", type=int, default=0, help="the encoder batcher's max queue delay")
    parser.add_argument(
        "--token-budget",
        type=int,
        help='padded tokens per encoder run (default: 512 in fp32, 2048 in bf16, benchmarks/README.md "Tuning")',
    )
    parser.add_argument(
        "--cpu-precision",
        default=AUTO,
        choices=(AUTO, FP32, BF16),
        help="the server's and the in-process limit's CPU precision; auto (the default, as `prepare` serves it): "
        "bf16 where the CPU has bf16 units and the model's bf16 validation passes, else fp32",
    )
    parser.add_argument("--spinning", action="store_true", help="let ONNX Runtime's threads spin (server and ORT)")
    parser.add_argument("--preprocess-instances", type=int, default=1)
    parser.add_argument(
        "--encoder-instances", type=int, default=2, help="encoder instances; each gets threads / instances ORT threads"
    )
    parser.add_argument("--st-batch", type=int, default=32, help="sentence-transformers batch size (its default)")
    parser.add_argument("--no-infinity", action="store_true", help="leave the infinity-emb peer out of online and bulk")
    parser.add_argument(
        "--infinity-venv", type=Path, default=INFINITY_VENV, help="infinity-emb's environment (make bench-peers)"
    )
    parser.add_argument(
        "--infinity-batch",
        type=int,
        default=32,
        help="infinity-emb's --batch-size (its default) and the documents per bulk request",
    )
    parser.add_argument("--probes", type=int, default=20, help="queries timed per priority run")
    parser.add_argument("--bulk-requests", type=int, default=12, help="document requests in flight (priority)")
    parser.add_argument("--bulk-batch", type=int, default=8, help="documents per request and max_batch_size (priority)")
    parser.add_argument("--bursts", type=int, default=40, help="bursts of --concurrency queries per repeat (bursts)")
    parser.add_argument("--interval-ms", type=int, default=4000, help="perf_analyzer's measurement window")
    parser.add_argument(
        "--cache-window-requests", type=int, default=20000, help="perf_analyzer's window (requests) with the cache"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--wait-quiet", action="store_true", help="wait for a 1-minute load average below 1.5")
    parser.add_argument(
        "--foreign-max", type=float, default=0.15, help="cores other processes may use during a kept repeat"
    )
    parser.add_argument("--retries", type=int, default=4, help="repeats taken again when others used the cores")
    parser.add_argument("--quiet-timeout-s", type=float, default=1200, help="longest wait for idle cores per repeat")
    parser.add_argument("--tag", default="", help="results go to side_by_side[-TAG].json/.md (pieces of one run)")
    args = parser.parse_args(argv)
    args.runs = range(args.repeats)
    args.precision_request, args.precision_choice = args.cpu_precision, f"pinned: cpu_precision {args.cpu_precision}"
    args.tuned_budget = args.token_budget is None
    if args.cpu_precision != AUTO:
        _set_precision(args, args.cpu_precision, args.precision_choice)
    return args


def _set_precision(args: argparse.Namespace, precision: str, choice: str) -> None:
    args.cpu_precision, args.precision_choice = precision, choice
    if args.tuned_budget:
        args.token_budget = TUNED_TOKEN_BUDGET[precision]


def resolve_precision(args: argparse.Namespace, model: str) -> None:
    """`auto` resolved for `model` as `prepare` resolves it (prepare.resolve_cpu_precision), so the server and the
    in-process limit compute in the precision a default deployment of `model` on this machine computes in."""
    if args.precision_request != AUTO:
        return
    from instruct_embed.catalog import get_spec
    from instruct_embed.prepare import PrepareOptions, prepare_model, resolve_cpu_precision
    from instruct_embed.repository.configs import ServingOptions

    root = BENCH_DIR.parent / ".cache" / "bench" / "repositories" / f"resolve-{model}"
    prepared = prepare_model(model, PrepareOptions(repository=root, serving=ServingOptions(cpu_precision=FP32)))
    assert prepared.onnx is not None, "the CPU encoder serves an ONNX graph"
    serving = resolve_cpu_precision(get_spec(model), prepared.onnx, PrepareOptions(), prepared.hf_dir)
    _set_precision(args, serving.cpu_precision, serving.precision_choice)
    print(f"  cpu precision {args.cpu_precision} ({args.precision_choice})")


def peer_versions(args: argparse.Namespace) -> dict[str, str]:
    """The peers' versions for the report, where they were measured."""
    from .peers import infinity_missing, installed_version

    if args.no_infinity or infinity_missing(args.infinity_venv) or not {"online", "bulk"} & set(args.scenarios):
        return {}
    return {"infinity-emb": installed_version(args.infinity_venv)}


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # as in the server's stubs: one thread per tokenizer
    import sys

    from .machine import describe_load, load_average, machine, versions, wait_for_quiet
    from .texts import load_texts

    args = parse_args(argv)
    texts = load_texts(max_docs=args.docs or None)
    root = BENCH_DIR.parent / ".cache" / "bench" / "repositories"
    if args.wait_quiet:
        wait_for_quiet()
    load_start = describe_load(load_average())
    print(f"{machine()}; load average {load_start}; {texts.source}")
    found: list[Measurement] = []
    for model in args.models:
        print(f"== {model}")
        resolve_precision(args, model)
        run = Run(args, model, texts, root)
        if {"online", "bulk", "tokenizer"} & set(args.scenarios):
            run.throughput()
        if "priority" in args.scenarios:
            run.priority()
        for scenario in ("ceiling", "cache"):
            if scenario in args.scenarios:
                run.perf(scenario)
        if "bursts" in args.scenarios:
            run.bursts()
        found.extend(run.found)
    context = {
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "machine": machine(),
        "load_start": load_start,
        "load_end": describe_load(load_average()),
        "texts": texts.source,
        "threads": args.threads,
        "repeats": args.repeats,
        "serving": repr(serving_options(args)),
        "cpu_precision_request": args.precision_request,  # "auto": the default configuration
        "precision_choice": args.precision_choice,
        "command": "python -m benchmarks.side_by_side " + " ".join(sys.argv[1:] if argv is None else argv),
        "versions": {**versions(), **peer_versions(args)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"side_by_side-{args.tag}" if args.tag else "side_by_side"
    save(found, args.out / f"{stem}.json", context)
    report = write_report(found, context, args.out / f"{stem}.md")
    print(ratio_table(ratio_rows(found)))
    print(f"wrote {report} (load average at the end {context['load_end']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
