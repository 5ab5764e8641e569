"""Truncation keeps the template and instruction, and a long text's window gives the same tokens as the whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from instruct_embed.runtime import windowing
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.prompting import Prompt
from instruct_embed.runtime.tokenization import PromptTokenizer, TokenizerSettings
from tests.unit.test_tokenization import WORDS, ids, write_tokenizer

CLS, SEP, INSTR, COLON = 2, 3, WORDS.index("instr"), WORDS.index(":")
A, B, C, D, E = (WORDS.index(w) for w in "abcde")


@pytest.fixture()
def tokenizer(tmp_path: Path) -> PromptTokenizer:
    return PromptTokenizer(write_tokenizer(tmp_path / "t.json"), TokenizerSettings(max_length=6))


def kept(batch, row: int = 0) -> list[int]:  # type: ignore[no-untyped-def]
    return ids(batch.input_ids[row], batch.attention_mask[row])


def test_end_keeps_the_prefix_and_the_start_of_the_text(tokenizer: PromptTokenizer) -> None:
    batch = tokenizer.encode([Prompt("instr : ", "a b c d e")], truncate="end")
    assert kept(batch) == [CLS, INSTR, COLON, A, B, SEP]
    assert batch.token_counts.tolist() == [6]


def test_start_keeps_the_prefix_and_the_end_of_the_text(tokenizer: PromptTokenizer) -> None:
    # Dropping tokens from the start of the whole prompt would drop the instruction: a query would stop being one.
    batch = tokenizer.encode([Prompt("instr : ", "a b c d e")], truncate="start")
    assert kept(batch) == [CLS, INSTR, COLON, D, E, SEP]


def test_a_raw_text_has_no_prefix_to_keep(tokenizer: PromptTokenizer) -> None:
    batch = tokenizer.encode([Prompt("", "instr : a b c d e")], truncate="start")
    assert kept(batch) == [CLS, B, C, D, E, SEP]


def test_a_prefix_that_fills_the_budget_is_refused(tokenizer: PromptTokenizer) -> None:
    long_prefix = "instr : instr : "
    for mode in ("end", "start"):
        with pytest.raises(RequestError, match="template and instruction alone take 4 tokens"):
            tokenizer.encode([Prompt(long_prefix, "a b c")], truncate=mode)


def test_texts_within_the_limit_are_untouched_in_every_mode(tokenizer: PromptTokenizer) -> None:
    for mode in ("end", "start", "none"):
        assert kept(tokenizer.encode([Prompt("instr : ", "a b")], truncate=mode)) == [CLS, INSTR, COLON, A, B, SEP]


def test_none_names_the_exact_count_or_a_lower_bound_for_a_cut_text(tokenizer: PromptTokenizer) -> None:
    with pytest.raises(RequestError, match="text 0 has 9 tokens, more than the model's limit of 6"):
        tokenizer.encode([Prompt("instr : ", "a b c d e")], truncate="none")
    huge = " ".join(["a"] * 100_000)
    with pytest.raises(RequestError, match=r"text 0 has at least \d+ tokens, more than the model's limit of 6"):
        tokenizer.encode([Prompt("", huge)], truncate="none")


@pytest.mark.parametrize("mode", ["end", "start"])
def test_a_windowed_long_text_gives_the_tokens_of_the_whole_text(tmp_path: Path, mode: str) -> None:
    path = write_tokenizer(tmp_path / "t.json")
    windowed = PromptTokenizer(path, TokenizerSettings(max_length=6))
    windowed.window_chars_per_token = 1  # windows of 22 characters, widened until they hold 22 tokens
    whole = PromptTokenizer(path, TokenizerSettings(max_length=6))
    whole.window_chars_per_token = 10**9
    rng = np.random.default_rng(0)
    for _ in range(50):
        words = rng.choice(["a", "b", "c", "d", "e", "instr", ":", "zz"], size=int(rng.integers(1, 80)))
        gaps = rng.choice([" ", "  ", "\t", "\n"], size=len(words))
        text = "".join(f"{w}{g}" for w, g in zip(words, gaps, strict=True))
        prompts = [Prompt("instr : ", text), Prompt("", text)]
        assert kept(windowed.encode(prompts, mode)) == kept(whole.encode(prompts, mode))
        assert kept(windowed.encode(prompts, mode), 1) == kept(whole.encode(prompts, mode), 1)


def test_windows_cut_at_whitespace_near_their_edge() -> None:
    text = "alpha beta gamma delta"
    assert windowing.head(text, 13) == windowing.Window("alpha beta", True)
    assert windowing.tail(text, 13) == windowing.Window(" gamma delta", True)
    assert windowing.head("short", 13) == windowing.Window("short", False)
    # No whitespace near the edge: a plain cut (the margin keeps the split word away from the kept tokens).
    assert windowing.head("x" * 40, 10) == windowing.Window("x" * 10, True)
