"""A zero-cost stand-in for the encoder: right-shaped outputs, no model, to measure the pipeline's own ceiling.

With it in the encoder's place, a load test measures what the server costs without the model: HTTP/gRPC,
the ensemble, the preprocess step (prompts and tokenisation) and serialisation. That ceiling must stay far
above what a GPU engine can take, or the CPU side starves it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .contract import ATTENTION_MASK

OUTPUTS_PARAMETER = "null_encoder_outputs"


@dataclass(frozen=True)
class NullOutput:
    """One output as the real encoder would return it; `dims` excludes the batch axis (-1: the sequence axis)."""

    name: str
    dims: tuple[int, ...]
    per_token: bool = False


def outputs_to_parameter(outputs: Sequence[NullOutput]) -> str:
    return json.dumps([{"name": o.name, "dims": list(o.dims), "per_token": o.per_token} for o in outputs])


def outputs_from_parameter(text: str) -> tuple[NullOutput, ...]:
    entries = json.loads(text)
    return tuple(NullOutput(o["name"], tuple(int(d) for d in o["dims"]), bool(o["per_token"])) for o in entries)


class NullEncoder:
    """Returns, per request of [n, L] inputs: float32 [n, dim] unit vectors for pooled outputs, and for per-token
    outputs [n, L] zeros (weights) or [n, L, dim] unit vectors. The values carry no meaning; only shapes and dtypes
    match the real encoder's, so the ensemble and its clients run unchanged."""

    def __init__(self, outputs: Sequence[NullOutput]) -> None:
        if not outputs:
            raise ValueError("the null encoder needs at least one output")
        self.outputs = tuple(outputs)

    def run_requests(self, requests: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        return [self._one(request[ATTENTION_MASK].shape) for request in requests]

    def _one(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        rows, length = int(shape[0]), int(shape[1])
        result = {}
        for output in self.outputs:
            fixed = output.dims[1:] if output.per_token else output.dims
            full = (rows, length, *fixed) if output.per_token else (rows, *fixed)
            value = np.zeros(full, dtype=np.float32)
            if fixed:  # vectors: the first basis vector, unit length
                value[..., 0] = 1.0
            result[output.name] = value
        return result
