"""Tokenisation with the model's own rules: specials, the appended end token, truncation, padding side.

Uses the `tokenizers` library directly on tokenizer.json. tokenizer.json files may carry their own padding
and truncation (all-MiniLM-L6-v2's pads every text to 128 tokens with mask 1), so both are reset here and
the real length always comes from the encoding's own attention mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from .errors import RequestError
from .prompting import Prompt

TRUNCATE_MODES = ("end", "start", "none")


@dataclass(frozen=True)
class TokenizerSettings:
    max_length: int
    add_special_tokens: bool = True
    append_token: str | None = None
    padding_side: str = "right"
    mask_instruction: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> TokenizerSettings:
        append = config.get("append_token")
        return cls(
            max_length=int(config["max_length"]),  # type: ignore[call-overload]
            add_special_tokens=bool(config.get("add_special_tokens", True)),
            append_token=None if append is None else str(append),
            padding_side=str(config.get("padding_side", "right")),
            mask_instruction=bool(config.get("instruction_masked_in_pooling", False)),
        )


@dataclass
class TokenBatch:
    """Padded int64 arrays of shape [n, length], and the real token count per text."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    token_counts: np.ndarray  # int32 [n]
    pool_mask: np.ndarray | None = None  # attention_mask with the instruction zeroed, where the model asks


class PromptTokenizer:
    """Turns resolved prompts into the encoder's input tensors."""

    def __init__(self, tokenizer_json: str, settings: TokenizerSettings) -> None:
        self.settings = settings
        self._tokenizer = Tokenizer.from_file(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._append_id: int | None = None
        if settings.append_token is not None:
            token_id = self._tokenizer.token_to_id(settings.append_token)
            if token_id is None:
                raise ValueError(f"append token {settings.append_token!r} is not in the vocabulary")
            self._append_id = token_id
        self.pad_id = self._find_pad_id()

    def _find_pad_id(self) -> int:
        for token in ("<pad>", "[PAD]", "<|endoftext|>", "</s>", "<unk>"):
            token_id = self._tokenizer.token_to_id(token)
            if token_id is not None:
                return token_id
        return 0

    @property
    def budget(self) -> int:
        """Tokens the tokenizer itself may produce, leaving room for the appended token."""
        return self.settings.max_length - (1 if self._append_id is not None else 0)

    def encode(self, prompts: Sequence[Prompt], truncate: str = "end") -> TokenBatch:
        """Tokenise `prompts` and pad them into one batch (pad to the longest)."""
        if truncate not in TRUNCATE_MODES:
            raise RequestError(f"unknown TRUNCATE {truncate!r}; allowed: {', '.join(TRUNCATE_MODES)}")
        encodings = self._tokenizer.encode_batch(
            [p.full for p in prompts], add_special_tokens=self.settings.add_special_tokens
        )
        rows = []
        for index, encoding in enumerate(encodings):
            ids = [i for i, m in zip(encoding.ids, encoding.attention_mask, strict=True) if m]
            types = [t for t, m in zip(encoding.type_ids, encoding.attention_mask, strict=True) if m]
            ids, types = self._truncate(ids, types, truncate, index)
            if self._append_id is not None:
                ids.append(self._append_id)
                types.append(0)
            rows.append((ids, types))
        instruction_lengths = self._instruction_lengths(prompts) if self.settings.mask_instruction else None
        return self._pad(rows, instruction_lengths)

    def _truncate(self, ids: list[int], types: list[int], mode: str, index: int) -> tuple[list[int], list[int]]:
        budget = self.budget
        if len(ids) <= budget:
            return ids, types
        if mode == "none":
            raise RequestError(
                f"text {index} has {len(ids)} tokens, more than the model's limit of {budget}; "
                "shorten it or send TRUNCATE 'end' or 'start'"
            )
        # Keep the leading/trailing special tokens the post-processor added (CLS/SEP, BOS).
        lead, tail = self._special_edges(ids)
        body_budget = budget - lead - tail
        body = slice(lead, len(ids) - tail)
        body_ids, body_types = ids[body], types[body]
        if mode == "end":
            body_ids, body_types = body_ids[:body_budget], body_types[:body_budget]
        else:
            body_ids, body_types = body_ids[-body_budget:], body_types[-body_budget:]
        return (
            ids[:lead] + body_ids + ids[len(ids) - tail :],
            types[:lead] + body_types + types[len(types) - tail :],
        )

    def _special_edges(self, ids: list[int]) -> tuple[int, int]:
        if not self.settings.add_special_tokens:
            return 0, 0
        probe = self._tokenizer.encode("", add_special_tokens=True).ids
        lead = 0
        while lead < len(probe) and lead < len(ids) and ids[lead] == probe[lead]:
            lead += 1
        return lead, len(probe) - lead

    def _instruction_lengths(self, prompts: Sequence[Prompt]) -> list[int]:
        # NV-Embed-v2 counts the instruction's tokens without specials and zeroes that many leading positions.
        prefixes = [p.prefix for p in prompts]
        encoded = self._tokenizer.encode_batch(prefixes, add_special_tokens=False)
        return [len(e.ids) if prefix else 0 for e, prefix in zip(encoded, prefixes, strict=True)]

    def _pad(self, rows: list[tuple[list[int], list[int]]], instruction_lengths: list[int] | None) -> TokenBatch:
        n = len(rows)
        length = max((len(ids) for ids, _ in rows), default=0)
        input_ids = np.full((n, length), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((n, length), dtype=np.int64)
        token_type_ids = np.zeros((n, length), dtype=np.int64)
        for row, (ids, types) in enumerate(rows):
            span = slice(0, len(ids)) if self.settings.padding_side == "right" else slice(length - len(ids), length)
            input_ids[row, span] = ids
            attention_mask[row, span] = 1
            token_type_ids[row, span] = types
        counts = np.array([len(ids) for ids, _ in rows], dtype=np.int32)
        pool_mask = None
        if instruction_lengths is not None:
            pool_mask = attention_mask.copy()
            for row, skip in enumerate(instruction_lengths):
                start = 0 if self.settings.padding_side == "right" else length - len(rows[row][0])
                pool_mask[row, start : start + min(skip, len(rows[row][0]) - 1)] = 0
        return TokenBatch(input_ids, attention_mask, token_type_ids, counts, pool_mask)
