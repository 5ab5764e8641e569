"""The storage types on their own: per-row codes, the NIM / sentence-transformers layout, calibration, merging."""

from __future__ import annotations

import numpy as np

from instruct_embed.runtime.postprocess import Postprocessor, merge_rows
from instruct_embed.runtime.quantization import (
    Int8Ranges,
    decode_uint8,
    measure_ranges,
    to_binary,
    to_int8,
    to_ubinary,
    to_uint8,
)


def _ranges(vectors: np.ndarray) -> Int8Ranges:
    return measure_ranges({vectors.shape[1]: vectors}, {"texts": len(vectors)})


def test_codes_span_the_range_and_decode_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    calibration = rng.normal(size=(200, 16)).astype(np.float32)
    ranges = _ranges(calibration)
    codes = to_uint8(calibration, ranges)
    assert codes.min(axis=0).tolist() == [0] * 16 and codes.max(axis=0).tolist() == [255] * 16
    assert (np.abs(decode_uint8(codes, ranges) - calibration) <= ranges.step(16) / 2 + 1e-6).all()
    assert np.array_equal(to_int8(calibration, ranges).astype(np.int16), codes.astype(np.int16) - 128)
    # Outside the range: clipped to its ends, never wrapped around.
    beyond = np.stack([ranges.high[16] + 1, ranges.low[16] - 1])
    assert to_uint8(beyond, ranges).tolist() == [[255] * 16, [0] * 16]


def test_each_row_is_coded_on_its_own() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(9, 24)).astype(np.float32)
    ranges = _ranges(rng.normal(size=(50, 24)).astype(np.float32))
    for code in (lambda v: to_int8(v, ranges), lambda v: to_uint8(v, ranges), to_binary, to_ubinary):
        whole = code(vectors)
        assert np.array_equal(whole, np.concatenate([code(vectors[i : i + 1]) for i in range(9)]))


def test_sign_bits_are_packed_first_component_highest_as_numpy_packbits() -> None:
    vector = np.array([[0.5, -0.1, 0.0, 0.2, -0.3, 0.1, 0.1, -0.9, 0.4, -0.4]], dtype=np.float32)
    assert to_ubinary(vector).tolist() == [[0b10010110, 0b10000000]]  # zero is not positive; the tail pads with 0
    assert to_binary(vector).tolist() == [[0b10010110 - 128, 0b10000000 - 128]]


def test_ranges_round_trip_through_their_file(tmp_path) -> None:
    rng = np.random.default_rng(2)
    ranges = measure_ranges(
        {8: rng.normal(size=(10, 8)).astype(np.float32), 4: rng.normal(size=(10, 4)).astype(np.float32)},
        {"texts": 10},
    )
    path = tmp_path / "int8_ranges.json"
    path.write_text(ranges.to_json())
    again = Int8Ranges.read(path)
    assert again is not None and again.provenance == {"texts": 10}
    assert all(np.allclose(again.low[w], ranges.low[w], atol=1e-7) for w in (8, 4))
    assert Int8Ranges.read(tmp_path / "missing.json") is None


def test_merge_rows_averages_a_texts_windows_and_renormalises() -> None:
    vectors = np.eye(3, dtype=np.float32)
    merged = merge_rows(vectors, np.array([[0], [0], [1]], dtype=np.int32))
    assert np.allclose(merged, [[2**-0.5, 2**-0.5, 0], [0, 0, 1]])
    assert merge_rows(vectors, np.arange(3).reshape(3, 1)) is vectors, "one row each: the vectors as they are"


def test_postprocess_serves_int8_only_with_ranges() -> None:
    vectors = np.random.default_rng(3).normal(size=(2, 8)).astype(np.float32)
    sizes, rows = np.full((2, 1), 8, np.int32), np.arange(2).reshape(2, 1)
    plain = Postprocessor(None)(vectors, sizes, rows)
    assert set(plain) == {"EMBEDDING", "EMBEDDING_BINARY", "EMBEDDING_UBINARY"}
    calibrated = Postprocessor(_ranges(vectors))(vectors, sizes, rows)
    assert {"EMBEDDING_INT8", "EMBEDDING_UINT8"} <= set(calibrated)
