"""The encoder step: a graph session (on CPU: the exported graph on ONNX Runtime fp32 or OpenVINO bf16) running
many Triton requests per run, re-batched by length."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .contract import ATTENTION_MASK
from .graph_sessions import FP32, GraphSession, open_graph_session
from .sub_batching import SubBatchPlan, plan_sub_batches


def shared_threads(threads: int, instances: int) -> int:
    """`threads` if set (> 0), else this process's cores divided among `instances` encoder instances (at least 1):
    each instance is its own process with its own thread pool, and N pools of one thread per core would fight."""
    if threads > 0:
        return threads
    return max(1, len(os.sched_getaffinity(0)) // max(1, instances))


@dataclass(frozen=True)
class CpuEncoderSettings:
    intra_op_threads: int = 0  # 0: the runtime decides (one per core); from_parameters shares the cores instead
    allow_spinning: bool = False  # ONNX Runtime's spinning threads steal the core the preprocess and clients need
    precision: str = FP32  # "fp32": ONNX Runtime; "bf16": OpenVINO with bf16 matrix units (graph_sessions.py)
    token_budget: int = 8192  # padded tokens per encoder run (bounds one run's time and memory)
    max_rows: int = 64  # rows per encoder run
    run_cost_tokens: int = 0  # > 0: split sub-batches where padding costs more than another run (plan_sub_batches)

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str], instances: int = 1) -> CpuEncoderSettings:
        """Settings from the model config's parameters; `instances`: the encoder's instance count, among which a
        thread count of 0 shares this process's cores (each instance is its own process, with its own threads)."""
        return cls(
            intra_op_threads=shared_threads(int(parameters.get("ort_intra_op_threads", "0")), instances),
            allow_spinning=parameters.get("ort_allow_spinning", "0") == "1",
            token_budget=int(parameters.get("token_budget", "8192")),
            max_rows=int(parameters.get("max_rows_per_run", "64")),
            run_cost_tokens=int(parameters.get("run_cost_tokens", "0")),
            precision=parameters.get("cpu_precision", FP32),
        )


@dataclass
class RunStats:
    """What one call computed, for the padding-efficiency metrics."""

    real_tokens: int = 0
    computed_tokens: int = 0
    sub_batch_rows: list[int] = field(default_factory=list)

    def add(self, plan: SubBatchPlan) -> None:
        self.real_tokens += plan.real_tokens
        self.computed_tokens += plan.computed_tokens
        self.sub_batch_rows.extend(len(b) for b in plan.batches)


class SubBatchedEncoder:
    """Runs a graph session on a list of requests, each a dict of [n_i, L_i] int64 arrays (padded per request).

    All rows of all requests are cut to their real length (from attention_mask), sorted by length, grouped
    into token-budgeted sub-batches, run, and scattered back per request. Per-token outputs (axis 1 is the
    inputs' sequence axis, e.g. BGE-M3's sparse weights) come back at the request's own positions and length,
    zero on its padding, so they line up with that request's input_ids. The session is the CPU graph's
    (CpuEncoder) or PyTorch's on a GPU (the cuda target, export/torch_session.py).
    """

    def __init__(self, session: GraphSession, settings: CpuEncoderSettings = CpuEncoderSettings()) -> None:
        self.settings = settings
        self.session = session
        self.input_names = self.session.input_names
        self.output_names = self.session.output_names
        self.per_token_outputs = self.session.per_token_outputs

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.session.run(feed)

    def run_requests(
        self,
        requests: Sequence[Mapping[str, np.ndarray]],
        stats: RunStats | None = None,
        on_done: Callable[[int, dict[str, np.ndarray]], None] | None = None,
    ) -> list[dict[str, np.ndarray]]:
        """Every request's outputs, in order. `on_done(i, outputs)` is called as soon as request i's last row has
        run (short requests first: sub-batches run shortest rows first), so a query that shares a call with long
        documents can be answered before they are done."""
        rows = _Rows(requests, self.input_names)
        pending = [0] * len(requests)
        for request, _ in rows.owner:
            pending[request] += 1
        plan = plan_sub_batches(
            rows.lengths, self.settings.token_budget, self.settings.max_rows, self.settings.run_cost_tokens
        )
        if stats is not None:
            stats.add(plan)
        outputs: list[dict[str, np.ndarray]] = [{} for _ in requests]
        for batch in plan.batches:
            result = self.run(rows.feed(batch))
            for position, row in enumerate(batch):
                request, index = rows.owner[row]
                for name, value in result.items():
                    out = outputs[request].get(name)
                    if out is None:
                        out = outputs[request][name] = self._empty(name, value, rows.shape(request))
                    if name in self.per_token_outputs:
                        start = rows.starts[row]
                        length = rows.lengths[row]
                        out[index, start : start + length] = value[position, :length]
                    else:
                        out[index] = value[position]
                pending[request] -= 1
                if pending[request] == 0 and on_done is not None:
                    on_done(request, outputs[request])
        return outputs

    def _empty(self, name: str, value: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        rows, length = shape
        if name in self.per_token_outputs:
            return np.zeros((rows, length, *value.shape[2:]), dtype=value.dtype)
        return np.zeros((rows, *value.shape[1:]), dtype=value.dtype)


class CpuEncoder(SubBatchedEncoder):
    """The exported ONNX graph on CPU: ONNX Runtime in fp32, or OpenVINO with bf16 matrix math."""

    def __init__(self, onnx_path: str, settings: CpuEncoderSettings = CpuEncoderSettings()) -> None:
        session = open_graph_session(onnx_path, settings.precision, settings.intra_op_threads, settings.allow_spinning)
        super().__init__(session, settings)


class _Rows:
    """Every row of every request, cut to its real tokens (right- or left-padded alike)."""

    def __init__(self, requests: Sequence[Mapping[str, np.ndarray]], input_names: Sequence[str]) -> None:
        self.input_names = list(input_names)
        self.tokens: list[dict[str, np.ndarray]] = []
        self.lengths: list[int] = []
        self.starts: list[int] = []
        self.owner: list[tuple[int, int]] = []
        self._shapes: list[tuple[int, int]] = []
        for r, request in enumerate(requests):
            mask = request[ATTENTION_MASK]
            self._shapes.append((int(mask.shape[0]), int(mask.shape[1])))
            for i in range(mask.shape[0]):
                real = np.flatnonzero(mask[i])
                start = int(real[0]) if real.size else 0
                length = max(int(real.size), 1)  # an all-padding row still runs (one token), never empty
                self.tokens.append({n: request[n][i, start : start + length] for n in self.input_names})
                self.lengths.append(length)
                self.starts.append(start)
                self.owner.append((r, i))

    def shape(self, request: int) -> tuple[int, int]:
        return self._shapes[request]

    def feed(self, batch: Sequence[int]) -> dict[str, np.ndarray]:
        """Right-padded [rows, longest] arrays; padding is masked, so it changes no vector."""
        longest = max(self.lengths[row] for row in batch)
        feed = {}
        for name in self.input_names:
            array = np.zeros((len(batch), longest), dtype=self.tokens[batch[0]][name].dtype)
            for position, row in enumerate(batch):
                values = self.tokens[row][name]
                array[position, : values.shape[0]] = values
            feed[name] = array
        return feed
