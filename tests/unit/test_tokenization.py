"""The server's tokenisation rules on a tiny offline tokenizer: specials, appended token, truncation, padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.prompting import Prompt
from instruct_embed.runtime.tokenization import PromptTokenizer, TokenizerSettings

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "</s>", "a", "b", "c", "d", "e", "instr", ":"]


def write_tokenizer(path: Path, bert_style: bool = True) -> str:
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if bert_style:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    # The trap seen in all-MiniLM-L6-v2's tokenizer.json: fixed padding and truncation baked into the file.
    tokenizer.enable_padding(length=16, pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=16)
    tokenizer.save(str(path))
    return str(path)


def ids(batch_row: np.ndarray, mask_row: np.ndarray) -> list[int]:
    return [int(i) for i, m in zip(batch_row, mask_row, strict=True) if m]


def test_padding_and_truncation_baked_into_tokenizer_json_are_ignored(tmp_path: Path) -> None:
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=64))
    batch = tok.encode([Prompt("", "a b"), Prompt("", "a b c d e")])
    assert batch.input_ids.shape == (2, 7)
    assert batch.token_counts.tolist() == [4, 7]
    assert ids(batch.input_ids[0], batch.attention_mask[0]) == [2, 5, 6, 3]
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 1, 0, 0, 0]


def test_end_truncation_keeps_the_special_tokens(tmp_path: Path) -> None:
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=4))
    batch = tok.encode([Prompt("", "a b c d e")])
    assert ids(batch.input_ids[0], batch.attention_mask[0]) == [2, 5, 6, 3]


def test_start_truncation_keeps_the_end_of_the_text(tmp_path: Path) -> None:
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=4))
    batch = tok.encode([Prompt("", "a b c d e")], truncate="start")
    assert ids(batch.input_ids[0], batch.attention_mask[0]) == [2, 8, 9, 3]


def test_truncate_none_refuses_over_length_text(tmp_path: Path) -> None:
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=4))
    with pytest.raises(RequestError, match="text 0 has 7 tokens, more than the model's limit of 4"):
        tok.encode([Prompt("", "a b c d e")], truncate="none")


def test_unknown_truncate_mode_lists_the_allowed_ones(tmp_path: Path) -> None:
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=4))
    with pytest.raises(RequestError, match="allowed: end, start, none"):
        tok.encode([Prompt("", "a")], truncate="middle")


def test_append_token_comes_after_truncation(tmp_path: Path) -> None:
    settings = TokenizerSettings(max_length=4, add_special_tokens=False, append_token="</s>")
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json", bert_style=False), settings)
    batch = tok.encode([Prompt("", "a b c d e"), Prompt("", "a")])
    assert ids(batch.input_ids[0], batch.attention_mask[0]) == [5, 6, 7, 4]
    assert ids(batch.input_ids[1], batch.attention_mask[1]) == [5, 4]
    # Right padding: the appended token of the short row sits at mask.sum - 1.
    assert batch.input_ids[1, batch.attention_mask[1].sum() - 1] == 4


def test_left_padding_puts_the_text_at_the_end(tmp_path: Path) -> None:
    settings = TokenizerSettings(max_length=8, padding_side="left")
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json"), settings)
    batch = tok.encode([Prompt("", "a"), Prompt("", "a b c")])
    assert batch.attention_mask[0].tolist() == [0, 0, 1, 1, 1]
    assert batch.input_ids[0, -3:].tolist() == [2, 5, 3]


def test_pool_mask_zeroes_the_instruction_tokens(tmp_path: Path) -> None:
    settings = TokenizerSettings(max_length=16, add_special_tokens=False, append_token="</s>", mask_instruction=True)
    tok = PromptTokenizer(write_tokenizer(tmp_path / "t.json", bert_style=False), settings)
    batch = tok.encode([Prompt("instr : ", "a b"), Prompt("", "a b")])
    assert batch.pool_mask is not None
    assert batch.pool_mask[0].tolist() == [0, 0, 1, 1, 1]
    assert batch.pool_mask[1].tolist() == [1, 1, 1, 0, 0]


def test_unknown_append_token_fails_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the vocabulary"):
        PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=8, append_token="<eos>"))


def test_an_end_token_the_tokenizer_already_adds_is_not_doubled(tmp_path: Path) -> None:
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 4)])
    tokenizer.save(str(tmp_path / "t.json"))
    tok = PromptTokenizer(str(tmp_path / "t.json"), TokenizerSettings(max_length=4, append_token="</s>"))
    short, long = tok.encode([Prompt("", "a b"), Prompt("", "a b c d e")]).input_ids.tolist()
    assert short[:3] == [5, 6, 4] and short.count(4) == 1
    assert long == [5, 6, 7, 4]  # truncated to the limit, the end token kept once
