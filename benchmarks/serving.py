"""A benchmark's server: one model rendered with chosen ServingOptions into its own repository, on free ports.

Each variant (priority on/off, null encoder, response cache, ...) gets its own repository folder, so variants never
overwrite each other or the shared repository. The server runs in its own process group and its ports are checked
free again after it stops, so a leftover server never answers the next measurement.
"""

from __future__ import annotations

import re
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from instruct_embed.repository.configs import ServingOptions, encoder_name, preprocess_name
from instruct_embed.server import LocalTritonServer

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_metrics(text: str) -> list[Sample]:
    """Prometheus text exposition -> samples (comments and malformed lines skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        samples.append(Sample(match["name"], dict(_LABEL.findall(match["labels"] or "")), value))
    return samples


def metric_sum(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of `name` over the samples whose labels include `labels`."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@dataclass(frozen=True)
class Padding:
    """Real and computed (padded) tokens the encoder ran over a window, from its /metrics counters."""

    real_tokens: float
    computed_tokens: float
    sub_batches: float

    @property
    def efficiency(self) -> float:
        return self.real_tokens / self.computed_tokens if self.computed_tokens else float("nan")

    def __sub__(self, earlier: Padding) -> Padding:
        return Padding(
            self.real_tokens - earlier.real_tokens,
            self.computed_tokens - earlier.computed_tokens,
            self.sub_batches - earlier.sub_batches,
        )


def padding_counters(samples: list[Sample], encoder: str) -> Padding:
    return Padding(
        metric_sum(samples, "instruct_embed_real_tokens_total", model=encoder),
        metric_sum(samples, "instruct_embed_computed_tokens_total", model=encoder),
        metric_sum(samples, "instruct_embed_sub_batches_total", model=encoder),
    )


def tuned_serving(threads: int, encoder_instances: int = 2, **changes: Any) -> ServingOptions:
    """The CPU configuration the benchmarks serve, tuned on a 2-core machine (benchmarks/README.md, "Tuning"):
    one single-threaded encoder instance per core (no barrier between ONNX Runtime threads that other processes
    interrupt), no batcher delay (a closed loop of clients never fills a batch by waiting), 16 rows per execute,
    ONNX Runtime runs of at most 512 padded tokens (small runs stay in cache; a longer text runs alone)."""
    instances = max(1, min(encoder_instances, threads))
    options = ServingOptions(
        max_batch_size=16,
        token_budget=512,
        max_queue_delay_us=0,
        encoder_instances=instances,
        ort_intra_op_threads=max(1, threads // instances),
    )
    return replace(options, **changes)


@dataclass(frozen=True)
class Variant:
    """One served configuration of one model."""

    label: str  # the repository folder's name, unique per configuration
    model: str
    serving: ServingOptions = field(default_factory=ServingOptions)
    response_cache_bytes: int = 0


class BenchServer:
    """Prepares `variant.model` (cached), renders it under `root / variant.label`, serves it on free ports."""

    def __init__(self, variant: Variant, root: Path) -> None:
        self.variant = variant
        self.root = root
        self.server: LocalTritonServer | None = None

    def start(self) -> BenchServer:
        from instruct_embed.prepare import PrepareOptions, prepare_model
        from instruct_embed.server import ServerOptions
        from instruct_embed.server.process import free_port

        v = self.variant
        repository = self.root / v.label
        prepared = prepare_model(v.model, PrepareOptions(repository=repository, serving=v.serving))
        self.hf_dir, self.onnx = prepared.hf_dir, prepared.onnx
        spec_name = prepared.name
        options = ServerOptions(
            repository=repository,
            models=(spec_name, preprocess_name_of(spec_name), encoder_name_of(spec_name)),
            http_port=free_port(),
            grpc_port=free_port(),
            metrics_port=free_port(),
            log_file=self.root / f"{v.label}.log",
            response_cache_bytes=v.response_cache_bytes,
            exit_timeout_s=5,
        )
        self.server = LocalTritonServer(options).start()
        return self

    def stop(self) -> None:
        from instruct_embed.server.process import port_is_free

        if self.server is None:
            return
        server, self.server = self.server, None
        server.stop()
        o = server.options
        deadline = time.monotonic() + 10
        while not all(port_is_free(o.host, p) for p in (o.http_port, o.grpc_port, o.metrics_port)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.variant.label}: ports still taken after the server stopped")
            time.sleep(0.2)

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _running(self) -> LocalTritonServer:
        if self.server is None:
            raise RuntimeError("the server is not running")
        return self.server

    @property
    def http_url(self) -> str:
        return self._running().http_url

    @property
    def grpc_url(self) -> str:
        return self._running().grpc_url

    def url(self, protocol: str) -> str:
        return self.grpc_url if protocol == "grpc" else self.http_url

    def metrics(self) -> list[Sample]:
        with urllib.request.urlopen(self._running().metrics_url, timeout=10) as response:
            return parse_metrics(response.read().decode())

    def queue_ms(self, model: str) -> float:
        """Mean time a request of `model` waited in its queue since the server started (Triton's statistics)."""
        import json

        url = f"http://{self.http_url}/v2/models/{model}/stats"
        with urllib.request.urlopen(url, timeout=10) as response:
            stats = json.loads(response.read())["model_stats"][0]["inference_stats"]
        return stats["queue"]["ns"] / max(1, stats["success"]["count"]) / 1e6

    def padding(self) -> Padding:
        return padding_counters(self.metrics(), encoder_name_of(self.variant.model))


def preprocess_name_of(model: str) -> str:
    from instruct_embed.catalog import get_spec

    return preprocess_name(get_spec(model))


def encoder_name_of(model: str) -> str:
    from instruct_embed.catalog import get_spec

    return encoder_name(get_spec(model))
