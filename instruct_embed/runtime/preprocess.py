"""The preprocess step of the ensemble: request tensors in, encoder tensors out (no Triton import)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .bucketing import bucket_length, pad_to_length
from .contract import ATTENTION_MASK, INPUT_IDS, SIZES, SPEC_PARAMETER, TOKEN_COUNT
from .errors import RequestError
from .matryoshka import requested_size
from .prompting import PromptTemplates, resolve_prompt
from .tokenization import PromptTokenizer, TokenizerSettings

TOKENIZER_FILE = "tokenizer.json"


def _decode(value: Any, what: str, row: int) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RequestError(f"{what} row {row} is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    return str(value)


def _column(values: np.ndarray | None, n: int, what: str) -> list[str | None]:
    """One optional string per row: an [n, 1] tensor, or None when the input was not sent."""
    if values is None:
        return [None] * n
    flat = values.reshape(-1)
    if flat.shape[0] != n:
        raise RequestError(f"{what} has {flat.shape[0]} rows but TEXT has {n}; send one per text")
    return [_decode(v, what, i) or None for i, v in enumerate(flat)]


class Preprocessor:
    """Resolves each row's prompt and tokenises the batch.

    `__call__` takes numpy arrays as Triton hands them over (object arrays of bytes, shape [n, 1]) and
    returns the tensors named as the encoder's inputs, plus TOKEN_COUNT, plus `dimensions` (the size each row's
    vector is cut to by the postprocess step) for a model trained for Matryoshka sizes.
    """

    def __init__(self, config: Mapping[str, Any], tokenizer_json: str | Path) -> None:
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

    @classmethod
    def from_model_dir(cls, model_config: Mapping[str, Any], version_dir: Path) -> Preprocessor:
        """Build from a Triton model config (as JSON) whose parameters carry the spec."""
        spec = json.loads(model_config["parameters"][SPEC_PARAMETER]["string_value"])
        return cls(spec, version_dir / TOKENIZER_FILE)

    def __call__(
        self,
        text: np.ndarray,
        role: np.ndarray | None = None,
        task: np.ndarray | None = None,
        instruction: np.ndarray | None = None,
        truncate: np.ndarray | None = None,
        instruction_kind: np.ndarray | None = None,
        dimensions: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        texts = [_decode(v, "TEXT", i) for i, v in enumerate(text.reshape(-1))]
        n = len(texts)
        if n == 0:
            raise RequestError("TEXT is empty; send at least one text")
        roles = _column(role, n, "ROLE")
        tasks = _column(task, n, "TASK")
        instructions = _column(instruction, n, "INSTRUCTION")
        kinds = _column(instruction_kind, n, "INSTRUCTION_KIND")
        modes = {m or "end" for m in _column(truncate, n, "TRUNCATE")}
        if len(modes) > 1:
            raise RequestError("TRUNCATE must be the same for every text of a request")
        size = requested_size(dimensions, n, self.matryoshka_dims, self.dim, self.templates.model_name)
        prompts = [
            resolve_prompt(self.templates, t, r, k, i, kind)
            for t, r, k, i, kind in zip(texts, roles, tasks, instructions, kinds, strict=True)
        ]
        batch = self.tokenizer.encode(prompts, truncate=modes.pop())
        if self.sequence_buckets:
            length = bucket_length(batch.input_ids.shape[1], self.sequence_buckets)
            batch = pad_to_length(batch, length, self.tokenizer.pad_id, self.tokenizer.settings.padding_side)
        outputs = {name: t.astype(self.id_dtype, copy=False) for name, t in batch.feed(self.output_names).items()}
        outputs[TOKEN_COUNT] = batch.token_counts.reshape(n, 1)
        if self.matryoshka_dims:
            outputs[SIZES] = np.full((n, 1), size, dtype=np.int32)
        return outputs
