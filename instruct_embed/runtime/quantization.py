"""The vector's storage types: int8 / uint8 over calibrated per-dimension ranges, binary / ubinary sign bits.

Every function maps each row on its own, so a vector never depends on its batch neighbours (dynamic quantisation,
which scales by the batch's own range, would). int8 ranges are fixed per model and per width: the minimum and
maximum of each component over the embeddings of fixed sample texts, measured once when the model is prepared
(export/calibration.py) and stored in the rendered repository (INT8_RANGES_FILE). A component is mapped to one of
256 steps of its range (clipped outside it), so it decodes to within half a step: `decode_uint8`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .contract import BINARY, EMBEDDING_OUTPUTS, FLOAT, INT8, UBINARY, UINT8

LEVELS = 255  # steps between a range's ends: 256 codes


@dataclass(frozen=True)
class Int8Ranges:
    """Per-dimension [low, high] for each width the model serves (its full width, and any Matryoshka sizes)."""

    low: Mapping[int, np.ndarray]
    high: Mapping[int, np.ndarray]
    provenance: Mapping[str, Any]  # how they were measured: texts, their digest, the graph, the precision

    def step(self, width: int) -> np.ndarray:
        """The width of one code per dimension (never 0: a constant dimension still decodes to its value)."""
        return np.maximum((self.high[width] - self.low[width]) / LEVELS, np.float32(1e-12)).astype(np.float32)

    def to_json(self) -> str:
        widths = {
            str(w): {"low": self.low[w].round(8).tolist(), "high": self.high[w].round(8).tolist()} for w in self.low
        }
        return json.dumps({"provenance": dict(self.provenance), "widths": widths}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Int8Ranges:
        data = json.loads(text)
        widths = data["widths"]
        low = {int(w): np.asarray(r["low"], dtype=np.float32) for w, r in widths.items()}
        high = {int(w): np.asarray(r["high"], dtype=np.float32) for w, r in widths.items()}
        return cls(low, high, data.get("provenance", {}))

    @classmethod
    def read(cls, path: Path) -> Int8Ranges | None:
        return cls.from_json(path.read_text()) if path.exists() else None


def measure_ranges(vectors_by_width: Mapping[int, np.ndarray], provenance: Mapping[str, Any]) -> Int8Ranges:
    """Each width's per-dimension min and max over its calibration vectors ([n, width] each)."""
    low = {w: v.min(axis=0).astype(np.float32) for w, v in vectors_by_width.items()}
    high = {w: v.max(axis=0).astype(np.float32) for w, v in vectors_by_width.items()}
    return Int8Ranges(low, high, provenance)


def to_uint8(vectors: np.ndarray, ranges: Int8Ranges) -> np.ndarray:
    width = vectors.shape[1]
    codes = np.rint((vectors - ranges.low[width]) / ranges.step(width))
    return np.clip(codes, 0, LEVELS).astype(np.uint8)


def to_int8(vectors: np.ndarray, ranges: Int8Ranges) -> np.ndarray:
    return (to_uint8(vectors, ranges).astype(np.int16) - 128).astype(np.int8)


def decode_uint8(codes: np.ndarray, ranges: Int8Ranges) -> np.ndarray:
    """The float each code stands for (the middle of its step)."""
    width = codes.shape[1]
    return (ranges.low[width] + codes.astype(np.float32) * ranges.step(width)).astype(np.float32)


def decode_int8(codes: np.ndarray, ranges: Int8Ranges) -> np.ndarray:
    return decode_uint8((codes.astype(np.int16) + 128).astype(np.uint8), ranges)


def to_ubinary(vectors: np.ndarray) -> np.ndarray:
    """Sign bits (1: > 0), 8 per byte, the first component in the highest bit: [n, ceil(width / 8)] uint8."""
    return np.packbits(vectors > 0, axis=1)


def to_binary(vectors: np.ndarray) -> np.ndarray:
    return (to_ubinary(vectors).astype(np.int16) - 128).astype(np.int8)


def storage_outputs(vectors: np.ndarray, ranges: Int8Ranges | None) -> dict[str, np.ndarray]:
    """EMBEDDING and its storage types by output name; int8 / uint8 only where `ranges` are known."""
    outputs = {
        EMBEDDING_OUTPUTS[FLOAT]: vectors,
        EMBEDDING_OUTPUTS[BINARY]: to_binary(vectors),
        EMBEDDING_OUTPUTS[UBINARY]: to_ubinary(vectors),
    }
    if ranges is not None:
        outputs[EMBEDDING_OUTPUTS[INT8]] = to_int8(vectors, ranges)
        outputs[EMBEDDING_OUTPUTS[UINT8]] = to_uint8(vectors, ranges)
    return outputs
