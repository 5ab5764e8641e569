"""The encoder step on CPU: ONNX Runtime over the exported graph, many Triton requests per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class OrtSettings:
    intra_op_threads: int = 0  # 0: ONNX Runtime decides (one per core)
    allow_spinning: bool = False  # spinning threads steal the core the preprocess and clients need

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> OrtSettings:
        return cls(
            intra_op_threads=int(parameters.get("ort_intra_op_threads", "0")),
            allow_spinning=parameters.get("ort_allow_spinning", "0") == "1",
        )


class OrtEncoder:
    """Runs the graph on a list of requests, each a dict of [n_i, L_i] int64 arrays.

    Requests are right-padded to one common length (padding is masked, so it changes no vector), run as one
    batch, and the [n, ...] outputs are split back per request. Per-token outputs (axis 1 is the inputs'
    symbolic sequence axis, e.g. BGE-M3's sparse weights) are cut back to each request's own length, so they
    line up with that request's input_ids.
    """

    def __init__(self, onnx_path: str, settings: OrtSettings = OrtSettings()) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.intra_op_threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.allow_spinning else "0")
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        sequence_axis = self.session.get_inputs()[0].shape[1] if len(self.session.get_inputs()[0].shape) > 1 else None
        self.per_token_outputs = {
            o.name
            for o in self.session.get_outputs()
            if isinstance(sequence_axis, str) and len(o.shape) > 1 and o.shape[1] == sequence_axis
        }

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {name: feed[name] for name in self.input_names})
        return dict(zip(self.output_names, values, strict=True))

    def run_requests(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        if len(requests) == 1:
            return [self.run(requests[0])]
        length = max(r[self.input_names[0]].shape[1] for r in requests)
        feed = {name: np.concatenate([_pad_right(r[name], length) for r in requests]) for name in self.input_names}
        merged = self.run(feed)
        results: list[dict[str, np.ndarray]] = []
        start = 0
        for request in requests:
            rows, length = request[self.input_names[0]].shape[:2]
            results.append(
                {
                    name: value[start : start + rows, :length]
                    if name in self.per_token_outputs
                    else value[start : start + rows]
                    for name, value in merged.items()
                }
            )
            start += rows
        return results


def _pad_right(array: np.ndarray, length: int) -> np.ndarray:
    if array.shape[1] == length:
        return array
    return np.pad(array, ((0, 0), (0, length - array.shape[1])))
