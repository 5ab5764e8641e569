"""Measurements of the side-by-side run, their medians, and the table of ratios against the issue's targets."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """One quantity measured `len(values)` times (repeats) for one system on one model and scenario."""

    model: str
    scenario: str  # "online", "bulk", "padding", "priority on", "priority off", "ceiling", "tokenizer", ...
    system: str  # "server", "in-process ORT", "sentence-transformers", ...
    unit: str  # "texts/s", "ms", "req/s", "tokens/s", "ratio"
    values: tuple[float, ...]
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


@dataclass(frozen=True)
class Target:
    """`numerator / denominator >= minimum`, both medians of measurements of the same model.

    A target with no denominator compares the numerator's median itself with `minimum` (padding, req/s).
    `best_of`: the denominator is the highest median among these (scenario, system) keys, all of them measured
    (the best of several peers); `denominator` is then None.
    """

    name: str
    numerator: tuple[str, str]  # (scenario, system)
    denominator: tuple[str, str] | None
    minimum: float
    best_of: tuple[tuple[str, str], ...] = ()


INFINITY = "infinity-emb"  # benchmarks/peers.py: another embedding server, run as its users run it
TARGETS = (
    Target("online queries: server / in-process", ("online", "server"), ("online", "in-process ORT"), 0.9),
    Target("online queries: server / infinity-emb", ("online", "server"), ("online", INFINITY), 2.0),
    Target("bulk documents: server / in-process", ("bulk", "server"), ("bulk", "in-process ORT"), 0.9),
    Target("bulk padding efficiency (server /metrics)", ("padding", "server"), None, 0.9),
    Target("bulk: server / sentence-transformers", ("bulk", "server"), ("bulk", "sentence-transformers"), 1.5),
    Target(
        "bulk: server / best peer (infinity-emb, sentence-transformers)",
        ("bulk", "server"),
        None,
        1.5,
        best_of=(("bulk", INFINITY), ("bulk", "sentence-transformers")),
    ),
    # Only in bf16 runs: against PyTorch's own bf16 (autocast), so the precision is the same on both sides.
    Target(
        "bulk: server / sentence-transformers bf16 autocast",
        ("bulk", "server"),
        ("bulk", "sentence-transformers bf16"),
        1.5,
    ),
    Target("query p95 under bulk load: off / on", ("priority off", "server"), ("priority on", "server"), 3.0),
    Target("null-encoder ceiling (gRPC, c=16), req/s", ("ceiling", "server null encoder"), None, 1000.0),
)


@dataclass(frozen=True)
class RatioRow:
    model: str
    target: str
    value: float
    minimum: float
    detail: str

    @property
    def met(self) -> bool:
        return self.value >= self.minimum


def _find(measurements: Sequence[Measurement], model: str, key: tuple[str, str]) -> Measurement | None:
    for m in measurements:
        if (m.model, m.scenario, m.system) == (model, *key):
            return m
    return None


def ratio_rows(measurements: Sequence[Measurement], targets: Sequence[Target] = TARGETS) -> list[RatioRow]:
    """One row per (model, target) whose measurements exist; targets lacking a measurement are left out."""
    rows = []
    models = list(dict.fromkeys(m.model for m in measurements))
    for model in models:
        for target in targets:
            top = _find(measurements, model, target.numerator)
            if top is None:
                continue
            if target.best_of:
                peers = [_find(measurements, model, key) for key in target.best_of]
                measured = [p for p in peers if p is not None]
                if len(measured) < len(peers):
                    continue
                best = max(measured, key=lambda p: p.median)
                if not best.median:
                    continue
                detail = f"{top.median:.3g} / {best.median:.3g} {top.unit} ({best.system})"
                rows.append(RatioRow(model, target.name, top.median / best.median, target.minimum, detail))
                continue
            if target.denominator is None:
                rows.append(RatioRow(model, target.name, top.median, target.minimum, f"{top.median:.3g} {top.unit}"))
                continue
            bottom = _find(measurements, model, target.denominator)
            if bottom is None or not bottom.median:
                continue
            detail = f"{top.median:.3g} / {bottom.median:.3g} {top.unit}"
            rows.append(RatioRow(model, target.name, top.median / bottom.median, target.minimum, detail))
    return rows


def measurements_table(measurements: Sequence[Measurement]) -> str:
    lines = [
        "| model | scenario | system | median | unit | repeats | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in measurements:
        repeats = ", ".join(f"{v:.4g}" for v in m.values)
        lines.append(f"| {m.model} | {m.scenario} | {m.system} | {m.median:.4g} | {m.unit} | {repeats} | {m.note} |")
    return "\n".join(lines)


def ratio_table(rows: Sequence[RatioRow]) -> str:
    lines = ["| model | target | measured | ratio / value | needed | met |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.target} | {r.detail} | {r.value:.2f} | >= {r.minimum:g} | {'yes' if r.met else 'no'} |"
        )
    return "\n".join(lines)


def save(measurements: Sequence[Measurement], path: Path, context: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"context": context, "measurements": [asdict(m) for m in measurements]}, indent=1))
    return path


def load(path: Path) -> tuple[list[Measurement], dict[str, object]]:
    data = json.loads(path.read_text())
    found = [Measurement(**{**m, "values": tuple(m["values"])}) for m in data["measurements"]]
    return found, data["context"]
