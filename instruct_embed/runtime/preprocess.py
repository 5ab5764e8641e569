"""The preprocess step of the ensemble: request tensors in, encoder tensors out (no Triton import)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .bucketing import bucket_length, pad_to_length
from .contract import (
    ATTENTION_MASK,
    CHUNK_CHARS,
    CHUNK_MODES,
    CHUNK_TEXT,
    CHUNK_TOKENS,
    DEFAULT_CHUNK_OVERLAP,
    INPUT_IDS,
    MEAN,
    OUTPUT_ROW,
    SIZES,
    SPEC_PARAMETER,
    TOKEN_COUNT,
)
from .errors import RequestError
from .matryoshka import requested_size
from .prompting import PromptTemplates, resolve_prompt
from .tokenization import PromptTokenizer, TokenBatch, TokenizerSettings

TOKENIZER_FILE = "tokenizer.json"


def _decode(value: Any, what: str, row: int) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(f"{what} row {row} is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    return str(value)


def _one_value(values: list[Any], what: str) -> Any:
    """The value every row of a request shares (None where unset); RequestError where rows differ."""
    distinct = set(values)
    if len(distinct) > 1:
        raise RequestError(f"{what} must be the same for every text of a request")
    return distinct.pop() if distinct else None


def _rows(values: np.ndarray, n: int, what: str) -> np.ndarray:
    flat = values.reshape(-1)
    if flat.shape[0] != n:
        raise RequestError(f"{what} has {flat.shape[0]} rows but TEXT has {n}; send one per text")
    return flat


def _int_column(values: np.ndarray | None, n: int, what: str) -> list[int | None]:
    """One optional integer per row, as _column."""
    return [None] * n if values is None else [int(v) for v in _rows(values, n, what)]


def _column(values: np.ndarray | None, n: int, what: str) -> list[str | None]:
    """One optional string per row: an [n, 1] tensor, or None when the input was not sent."""
    if values is None:
        return [None] * n
    flat = _rows(values, n, what)
    return [_decode(v, what, i) or None for i, v in enumerate(flat)]


class Preprocessor:
    """Resolves each row's prompt and tokenises the batch.

    `__call__` takes numpy arrays as Triton hands them over (object arrays of bytes, shape [n, 1]) and
    returns the tensors named as the encoder's inputs (a row per text, or per window in CHUNK mode), TOKEN_COUNT
    and CHUNK_* (a row per text, or per window in CHUNK windows), and for the postprocess step `dimensions` (the
    size each row's vector is cut to) and `output_row` (the output row each encoder row goes to).
    """

    def __init__(self, config: Mapping[str, Any], tokenizer_json: str | Path, max_rows: int = 0) -> None:
        self.config = dict(config)
        self.templates = PromptTemplates.from_config(config)
        self.tokenizer = PromptTokenizer(str(tokenizer_json), TokenizerSettings.from_config(config))
        self.output_names: tuple[str, ...] = tuple(config.get("encoder_inputs", (INPUT_IDS, ATTENTION_MASK)))
        # int64 for ONNX graphs; a TensorRT repository asks for int32, the dtype its engine takes.
        self.id_dtype = np.dtype(str(config.get("encoder_input_dtype", "int64")))
        # A TensorRT repository lists its engine's sequence buckets: each request is padded to its bucket's
        # bound so that Triton can batch requests of one bucket together (bucketing.py).
        self.sequence_buckets: tuple[int, ...] = tuple(int(b) for b in config.get("sequence_buckets", ()))
        self.matryoshka_dims: tuple[int, ...] = tuple(int(d) for d in config.get("matryoshka_dims") or ())
        self.dim = int(config.get("dim", 0))
        # Triton's max_batch_size: the encoder takes no more rows than that, and CHUNK turns a text into several.
        self.max_rows = max_rows
        # Per-token outputs (BGE-M3's sparse weights) cannot be averaged over windows: CHUNK mean is refused.
        self.dense_only = list(config.get("outputs") or ["dense"]) == ["dense"]

    @classmethod
    def from_model_dir(cls, model_config: Mapping[str, Any], version_dir: Path) -> Preprocessor:
        """Build from a Triton model config (as JSON) whose parameters carry the spec."""
        spec = json.loads(model_config["parameters"][SPEC_PARAMETER]["string_value"])
        return cls(spec, version_dir / TOKENIZER_FILE, int(model_config.get("max_batch_size", 0)))

    def __call__(
        self,
        text: np.ndarray,
        role: np.ndarray | None = None,
        task: np.ndarray | None = None,
        instruction: np.ndarray | None = None,
        truncate: np.ndarray | None = None,
        instruction_kind: np.ndarray | None = None,
        dimensions: np.ndarray | None = None,
        chunk: np.ndarray | None = None,
        chunk_overlap: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        texts = [_decode(v, "TEXT", i) for i, v in enumerate(text.reshape(-1))]
        n = len(texts)
        if n == 0:
            raise RequestError("TEXT is empty; send at least one text")
        roles = _column(role, n, "ROLE")
        tasks = _column(task, n, "TASK")
        instructions = _column(instruction, n, "INSTRUCTION")
        kinds = _column(instruction_kind, n, "INSTRUCTION_KIND")
        truncation = _one_value([m or "end" for m in _column(truncate, n, "TRUNCATE")], "TRUNCATE")
        mode = _one_value(_column(chunk, n, "CHUNK"), "CHUNK")
        overlap = _one_value(_int_column(chunk_overlap, n, "CHUNK_OVERLAP"), "CHUNK_OVERLAP")
        size = requested_size(dimensions, n, self.matryoshka_dims, self.dim, self.templates.model_name)
        prompts = [
            resolve_prompt(self.templates, t, r, k, i, kind)
            for t, r, k, i, kind in zip(texts, roles, tasks, instructions, kinds, strict=True)
        ]
        if mode is None:
            if overlap is not None:
                raise RequestError("CHUNK_OVERLAP applies to CHUNK windows or mean; send CHUNK too, or no overlap")
            return self._outputs(self.tokenizer.encode(prompts, truncate=truncation), size, n, mean=False)
        if mode not in CHUNK_MODES:
            raise RequestError(f"unknown CHUNK {mode!r}; allowed: {', '.join(CHUNK_MODES)} (or none: truncate)")
        if mode == MEAN and not self.dense_only:
            raise RequestError(
                f"CHUNK mean averages dense vectors; model '{self.templates.model_name}' also returns per-token "
                "outputs, which cannot be averaged over windows: send CHUNK windows"
            )
        batch = self.tokenizer.encode_windows(prompts, DEFAULT_CHUNK_OVERLAP if overlap is None else overlap)
        rows = len(batch.windows)
        if self.max_rows and rows > self.max_rows:
            raise RequestError(
                f"CHUNK made {rows} windows of these {n} texts, more than the {self.max_rows} rows one request may "
                "carry: send fewer or shorter texts per request"
            )
        return self._outputs(batch, size, n, mean=mode == MEAN)

    def _outputs(self, batch: TokenBatch, size: int, n: int, mean: bool) -> dict[str, np.ndarray]:
        if self.sequence_buckets:
            length = bucket_length(batch.input_ids.shape[1], self.sequence_buckets)
            batch = pad_to_length(batch, length, self.tokenizer.pad_id, self.tokenizer.settings.padding_side)
        outputs = {name: t.astype(self.id_dtype, copy=False) for name, t in batch.feed(self.output_names).items()}
        rows = batch.input_ids.shape[0]
        counts = batch.token_counts.astype(np.int32)
        if batch.windows:
            text = np.array([w.text for w in batch.windows], dtype=np.int32)
            tokens = np.array([w.tokens for w in batch.windows], dtype=np.int32).reshape(rows, 2)
            chars = np.array([w.chars for w in batch.windows], dtype=np.int32).reshape(rows, 2)
        else:  # each row is its text, not chunked: no spans (-1)
            text = np.arange(rows, dtype=np.int32)
            tokens = np.full((rows, 2), -1, dtype=np.int32)
            chars = np.full((rows, 2), -1, dtype=np.int32)
        if mean:  # one output row per text: the encoder's rows are its windows, counted together
            outputs[OUTPUT_ROW] = text.reshape(rows, 1)
            counts = np.bincount(text, weights=counts, minlength=n).astype(np.int32)
        else:
            outputs[OUTPUT_ROW] = np.arange(rows, dtype=np.int32).reshape(rows, 1)
        outputs[TOKEN_COUNT] = counts.reshape(-1, 1)
        outputs[CHUNK_TEXT] = text.reshape(rows, 1)
        outputs[CHUNK_TOKENS] = tokens
        outputs[CHUNK_CHARS] = chars
        outputs[SIZES] = np.full((rows, 1), size, dtype=np.int32)
        return outputs
