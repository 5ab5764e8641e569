"""Tokenisation with the model's own rules: specials, the appended end token, truncation, padding side.

Uses the `tokenizers` library directly on tokenizer.json. tokenizer.json files may carry their own padding
and truncation (all-MiniLM-L6-v2's pads every text to 128 tokens with mask 1), so both are reset here and
the real length always comes from the encoding's own attention mask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from . import windowing
from .contract import ATTENTION_MASK, INPUT_IDS, POOL_MASK, TRUNCATE_MODES
from .errors import RequestError
from .prompting import Prompt


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


@dataclass(frozen=True)
class Window:
    """One CHUNK window of a text: its row in the batch, and its [start, end) in the text's tokens and characters."""

    text: int
    tokens: tuple[int, int]
    chars: tuple[int, int]


@dataclass
class TokenBatch:
    """Padded int64 arrays of shape [n, length], and the real token count per text."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray
    token_counts: np.ndarray  # int32 [n]
    pool_mask: np.ndarray | None = None  # attention_mask with the instruction zeroed, where the model asks

    windows: tuple[Window, ...] = ()  # CHUNK: one per row; empty: each row is its text, whole or truncated

    def feed(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The encoder's inputs `names` (the spec's encoder_inputs), by their tensor names."""
        available = {
            INPUT_IDS: self.input_ids,
            ATTENTION_MASK: self.attention_mask,
            "token_type_ids": self.token_type_ids,
            POOL_MASK: self.pool_mask,
        }
        feed = {}
        for name in names:
            tensor = available[name]
            if tensor is None:
                raise RequestError(f"the tokenizer produced no {name} for this model")
            feed[name] = tensor
        return feed


def plan_windows(count: int, room: int, overlap: int, starts_word: Callable[[int], bool]) -> list[tuple[int, int]]:
    """[start, end) windows of at most `room` over `count` tokens, covering each, neighbours sharing at least
    `overlap`; an edge moves back to a word's start (`starts_word(k)`: token k begins one) found in the last quarter
    of the window, else stays where the budget puts it."""
    if count <= room:
        return [(0, count)]
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + room, count)
        if end < count:
            end = next((k for k in range(end, start + room - room // 4, -1) if starts_word(k)), end)
        windows.append((start, end))
        if end >= count:
            return windows
        step = end - overlap
        aligned = next((k for k in range(step, max(start, step - room // 4), -1) if starts_word(k)), step)
        start = max(aligned, start + 1)


def word_starts(text: str, offsets: Sequence[tuple[int, int]]) -> list[bool]:
    """Per token (`offsets` into `text`), whether a window may start there: the token begins a word. Not where a
    character's bytes are split over tokens (byte-level BPE), nor at a bare space token or just after one
    (SentencePiece's "▁" before digits): the space belongs with the word after it."""
    starts = []
    for k, (start, end) in enumerate(offsets):
        if not text[start:end].strip():
            starts.append(False)
            continue
        if k > 0:
            before_start, before_end = offsets[k - 1]
            if start < before_end or not text[before_start:before_end].strip():
                starts.append(False)
                continue
        starts.append(start == 0 or text[start - 1].isspace() or text[start].isspace())
    return starts


def _char_span(text: str, offsets: Sequence[tuple[int, int]], prefix: int) -> tuple[int, int]:
    """The characters of a window's tokens in the prompt's text (after its `prefix` characters), without the
    spaces byte-level and SentencePiece tokens carry before their word."""
    if not offsets:
        return (0, 0)
    begin, finish = offsets[0][0], offsets[-1][1]
    while begin < finish and text[begin].isspace():
        begin += 1
    while finish > begin and text[finish - 1].isspace():
        finish -= 1
    return (max(0, begin - prefix), max(0, finish - prefix))


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
        self._empty_ids = self._tokenizer.encode("", add_special_tokens=True).ids  # the specials alone
        if self._append_id is not None and settings.add_special_tokens and self._empty_ids[-1:] == [self._append_id]:
            # This tokenizer.json's post-processor already ends every text with the token (gte-Qwen2's real
            # tokenizer does): it is kept through truncation as a special, and appending again would double it.
            self._append_id = None
        self.window_chars_per_token = windowing.CHARS_PER_TOKEN

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
        """Tokenise `prompts`, truncate each to the model's limit and pad them into one batch.

        `end` drops tokens from the end of the text, `start` from its start; both keep the special tokens and
        the prompt's prefix (the template and instruction), so a truncated query is still a query. `none`
        raises RequestError for a text over the limit. Raises RequestError for an unknown mode.
        """
        if truncate not in TRUNCATE_MODES:
            raise RequestError(f"unknown TRUNCATE {truncate!r}; allowed: {', '.join(TRUNCATE_MODES)}")
        rows: list[tuple[list[int], list[int]]] = [([], [])] * len(prompts)
        pending = list(range(len(prompts)))
        chars = (self.budget + windowing.MARGIN_TOKENS) * self.window_chars_per_token
        while pending:
            cut = windowing.tail if truncate == "start" else windowing.head
            windows = [cut(prompts[i].text, chars) for i in pending]
            encodings = self._tokenizer.encode_batch(
                [prompts[i].prefix + w.text for i, w in zip(pending, windows, strict=True)],
                add_special_tokens=self.settings.add_special_tokens,
            )
            too_short = []
            for index, window, encoding in zip(pending, windows, encodings, strict=True):
                # Each Encoding property builds a new list: read each once.
                kept = [k for k, m in enumerate(encoding.attention_mask) if m]
                all_ids = encoding.ids
                ids = [all_ids[k] for k in kept]
                if window.cut and len(ids) < self.budget + windowing.MARGIN_TOKENS:
                    too_short.append(index)  # the window may not stand for the whole text: widen it
                    continue
                all_types, all_offsets = encoding.type_ids, encoding.offsets
                types = [all_types[k] for k in kept]
                offsets = [all_offsets[k] for k in kept]
                # The prefix's trailing space may tokenise with the text's first word: it belongs to the text.
                prefix_tokens = self._prefix_tokens(ids, offsets, len(prompts[index].prefix.rstrip()))
                ids, types = self._truncate(ids, types, truncate, index, prefix_tokens, window.cut)
                if self._append_id is not None:
                    ids.append(self._append_id)
                    types.append(0)
                rows[index] = (ids, types)
            pending, chars = too_short, chars * 2
        instruction_lengths = self._instruction_lengths(prompts) if self.settings.mask_instruction else None
        return self._pad(rows, instruction_lengths)

    def encode_windows(self, prompts: Sequence[Prompt], overlap: int) -> TokenBatch:
        """Each prompt's text as token windows that fit the model, every window with the prompt's specials and
        prefix (the template and instruction); neighbours share `overlap` text tokens, more where a window is moved
        to a word's start. A text within the limit is one window. A window ends and starts where a word starts
        when one is in its last quarter, so that no word is split and the window's characters tokenise as it."""
        encodings = self._tokenizer.encode_batch(
            [p.prefix + p.text for p in prompts], add_special_tokens=self.settings.add_special_tokens
        )
        rows: list[tuple[list[int], list[int]]] = []
        windows: list[Window] = []
        for index, (prompt, encoding) in enumerate(zip(prompts, encodings, strict=True)):
            ids, types, offsets = encoding.ids, encoding.type_ids, encoding.offsets
            full = prompt.prefix + prompt.text
            prefix_tokens = self._prefix_tokens(ids, offsets, len(prompt.prefix.rstrip()))
            lead, tail = self._special_edges(ids)
            first, last = lead + prefix_tokens, len(ids) - tail  # the text's own tokens: ids[first:last]
            room = self.budget - lead - tail - prefix_tokens
            if room <= 0:
                raise RequestError(
                    f"text {index}: its template and instruction alone take {prefix_tokens} tokens, leaving no "
                    f"room for the text within the model's limit of {self.budget}; send a shorter INSTRUCTION"
                )
            if not 0 <= overlap < room:
                raise RequestError(
                    f"CHUNK_OVERLAP {overlap} must be at least 0 and less than the {room} text tokens a window of "
                    f"text {index} holds"
                )

            starts = word_starts(full, offsets[first:last])
            for start, end in plan_windows(last - first, room, overlap, starts.__getitem__):
                row_ids = ids[:first] + ids[first + start : first + end] + ids[last:]
                row_types = types[:first] + types[first + start : first + end] + types[last:]
                if self._append_id is not None:
                    row_ids, row_types = [*row_ids, self._append_id], [*row_types, 0]
                rows.append((row_ids, row_types))
                chars = _char_span(full, offsets[first + start : first + end], len(prompt.prefix))
                windows.append(Window(index, (start, end), chars))
        padded = self._pad(
            rows,
            self._instruction_lengths([prompts[w.text] for w in windows]) if self.settings.mask_instruction else None,
        )
        padded.windows = tuple(windows)
        return padded

    def _prefix_tokens(self, ids: list[int], offsets: list[tuple[int, int]], prefix_chars: int) -> int:
        """How many tokens after the leading specials lie wholly inside the prompt's prefix."""
        if not prefix_chars:
            return 0
        lead, tail = self._special_edges(ids)
        count = 0
        for _, end in offsets[lead : len(offsets) - tail]:
            if end > prefix_chars:
                break
            count += 1
        return count

    def _truncate(
        self, ids: list[int], types: list[int], mode: str, index: int, prefix_tokens: int, cut: bool
    ) -> tuple[list[int], list[int]]:
        budget = self.budget
        if len(ids) <= budget:
            return ids, types
        if mode == "none":
            count = f"at least {len(ids)}" if cut else str(len(ids))
            raise RequestError(
                f"text {index} has {count} tokens, more than the model's limit of {budget}; "
                "shorten it or send TRUNCATE 'end' or 'start'"
            )
        # Keep the leading/trailing special tokens the post-processor added (CLS/SEP, BOS), and the prefix.
        lead, tail = self._special_edges(ids)
        room = budget - lead - tail - prefix_tokens
        if room <= 0:
            raise RequestError(
                f"text {index}: its template and instruction alone take {prefix_tokens} tokens, leaving no room "
                f"for the text within the model's limit of {budget}; send a shorter INSTRUCTION"
            )
        head = slice(0, lead + prefix_tokens)
        body = slice(lead + prefix_tokens, len(ids) - tail)
        keep = slice(None, room) if mode == "end" else slice(-room, None)
        return (
            ids[head] + ids[body][keep] + ids[len(ids) - tail :],
            types[head] + types[body][keep] + types[len(types) - tail :],
        )

    def _special_edges(self, ids: list[int]) -> tuple[int, int]:
        if not self.settings.add_special_tokens:
            return 0, 0
        probe = self._empty_ids
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
