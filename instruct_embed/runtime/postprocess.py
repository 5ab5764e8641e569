"""The postprocess step of the ensemble: the encoder's vectors in, what the caller stores out (no Triton import).

In order: the Matryoshka cut (the size the preprocess step checked), CHUNK mean (a text's windows averaged into
one vector, renormalised), then the storage types (quantization.py). Each row is computed from its own encoder
row(s) alone, so no output depends on its batch neighbours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .contract import INT8_RANGES_FILE
from .matryoshka import matryoshka_prefix
from .quantization import Int8Ranges, storage_outputs


def merge_rows(vectors: np.ndarray, output_row: np.ndarray) -> np.ndarray:
    """Row i of the result: the mean of the rows whose output_row is i, renormalised (rows in order, each output
    row at least one); the vectors unchanged where every row is its own."""
    rows = output_row.reshape(-1).astype(np.int64)
    if rows.shape[0] == 0 or np.array_equal(rows, np.arange(rows.shape[0])):
        return vectors
    count = int(rows.max()) + 1
    sums = np.zeros((count, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, rows, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


class Postprocessor:
    def __init__(self, ranges: Int8Ranges | None) -> None:
        self.ranges = ranges

    @classmethod
    def from_version_dir(cls, version_dir: Path) -> Postprocessor:
        return cls(Int8Ranges.read(version_dir / INT8_RANGES_FILE))

    def __call__(self, dense: np.ndarray, sizes: np.ndarray, output_row: np.ndarray) -> dict[str, np.ndarray]:
        vectors = merge_rows(matryoshka_prefix(dense, sizes), output_row)
        return storage_outputs(vectors, self.ranges)
