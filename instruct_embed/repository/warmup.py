"""Warmup requests built from real token ids, so a model is loaded and its memory allocated before traffic.

Random ids can fall outside the vocabulary and an all-zero attention mask divides by zero in mean pooling (NaN
rows); both would also warm kernels on data nothing real looks like. So each sample is real text run through
the server's own tokenizer, truncated to the length wanted, with a mask of ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import ModelSpec
from instruct_embed.export.sample_texts import VALIDATION_TEXTS
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt
from instruct_embed.runtime.tokenization import PromptTokenizer, TokenizerSettings

WARMUP_DIR = "warmup"  # Triton reads input_data_file from <model>/warmup/
TRITON_DTYPES = {
    "int32": mc.TYPE_INT32,
    "int64": mc.TYPE_INT64,
    "float32": mc.TYPE_FP32,
    "float16": mc.TYPE_FP16,
    "bfloat16": mc.TYPE_BF16,
    "bool": mc.TYPE_BOOL,
}


@dataclass(frozen=True)
class WarmupSample:
    """One warmup request: `arrays` hold ONE sample per input ([length]); Triton repeats it `batch_size` times."""

    name: str
    batch_size: int
    arrays: Mapping[str, np.ndarray]

    def file_name(self, input_name: str) -> str:
        return f"{self.name}__{input_name}"


def real_tokens(spec: ModelSpec, tokenizer_json: Path, length: int) -> dict[str, np.ndarray]:
    """input_ids / attention_mask / pool_mask ([length]) of real document text truncated to exactly `length`."""
    config = {**spec.runtime_config(), "max_length": length}
    tokenizer = PromptTokenizer(str(tokenizer_json), TokenizerSettings.from_config(config))
    templates = PromptTemplates.from_config(config)
    text = " ".join(VALIDATION_TEXTS)
    for _ in range(32):
        batch = tokenizer.encode([resolve_prompt(templates, text, "document")])
        if batch.input_ids.shape[1] >= length:
            break
        text = f"{text} {text}"
    if batch.input_ids.shape[1] != length:
        raise ValueError(f"{spec.name}: could not make {length} tokens of real text (got {batch.input_ids.shape[1]})")
    arrays = {"input_ids": batch.input_ids[0], "attention_mask": batch.attention_mask[0]}
    arrays["pool_mask"] = batch.pool_mask[0] if batch.pool_mask is not None else batch.attention_mask[0]
    return arrays


def warmup_samples(
    spec: ModelSpec,
    tokenizer_json: Path,
    corners: Sequence[tuple[str, int, int]],
    input_names: Sequence[str],
    dtype: str,
) -> list[WarmupSample]:
    """One sample per (name, batch_size, length) corner, with the inputs `input_names` cast to `dtype`."""
    samples = []
    for name, batch_size, length in corners:
        tokens = real_tokens(spec, tokenizer_json, length)
        if not tokens["attention_mask"].all():
            raise ValueError(f"{spec.name}: warmup mask has zeros")  # never: truncation keeps real tokens only
        samples.append(WarmupSample(name, batch_size, {n: tokens[n].astype(dtype) for n in input_names}))
    return samples


def add_warmups(config: mc.ModelConfig, samples: Sequence[WarmupSample]) -> None:
    for sample in samples:
        warmup = config.model_warmup.add(name=sample.name, batch_size=sample.batch_size, count=1)
        for input_name, array in sample.arrays.items():
            entry = warmup.inputs[input_name]
            entry.data_type = TRITON_DTYPES[str(array.dtype)]
            entry.dims.extend(array.shape)
            entry.input_data_file = sample.file_name(input_name)


def write_warmup_files(model_dir: Path, samples: Sequence[WarmupSample]) -> list[Path]:
    """Raw little-endian row-major bytes of each sample input, as Triton's input_data_file expects."""
    folder = model_dir / WARMUP_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in samples:
        for input_name, array in sample.arrays.items():
            path = folder / sample.file_name(input_name)
            path.write_bytes(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
            written.append(path)
    return written
