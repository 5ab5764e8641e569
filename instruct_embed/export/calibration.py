"""The int8 ranges of a model's vectors, measured once when it is prepared, with the encoder it will serve.

Each calibration text is embedded as the server embeds it (the preprocess step's tokenizer code and prompts):
the queries as queries, the documents as documents and as queries (symmetric tasks give documents the query-side
template). For each width the model serves (its full width and any Matryoshka sizes, cut as the postprocess step
cuts), a dimension's range is its minimum and maximum over those vectors. The texts, their digest and the
encoder are recorded beside the ranges, so the file says how to measure it again.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from instruct_embed.catalog import ModelSpec
from instruct_embed.runtime.cpu_encoder import SubBatchedEncoder
from instruct_embed.runtime.matryoshka import allowed_sizes, matryoshka_prefix
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt
from instruct_embed.runtime.quantization import Int8Ranges, measure_ranges
from instruct_embed.runtime.tokenization import PromptTokenizer

from .calibration_texts import CALIBRATION_DOCUMENTS, CALIBRATION_QUERIES

PROMPTS_PER_RUN = 32  # bounds one encoder run's memory on a large model


def calibration_digest() -> str:
    texts = {"queries": CALIBRATION_QUERIES, "documents": CALIBRATION_DOCUMENTS}
    return hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest()


def calibrate_int8(
    spec: ModelSpec, tokenizer: PromptTokenizer, encoder: SubBatchedEncoder, encoder_name: str
) -> Int8Ranges:
    """`spec`'s per-dimension ranges as `encoder` (named `encoder_name` in the provenance) computes them."""
    templates = PromptTemplates.from_config(spec.runtime_config())
    roles = [(t, "query") for t in CALIBRATION_QUERIES] + [
        (t, role) for t in CALIBRATION_DOCUMENTS for role in ("document", "query")
    ]
    prompts = [resolve_prompt(templates, text, role) for text, role in roles]
    dense = []
    for start in range(0, len(prompts), PROMPTS_PER_RUN):
        batch = tokenizer.encode(prompts[start : start + PROMPTS_PER_RUN])
        dense.append(encoder.run(batch.feed(encoder.input_names))["embedding"])
    vectors = np.concatenate(dense).astype(np.float32)
    widths = allowed_sizes(spec.matryoshka_dims, spec.dim)
    by_width = {w: matryoshka_prefix(vectors, np.full((len(vectors), 1), w, np.int32)) for w in widths}
    provenance = {
        "method": "per-dimension min and max; 256 codes between them, clipped outside",
        "texts": "instruct_embed/export/calibration_texts.py",
        "texts_sha256": calibration_digest(),
        "vectors": len(vectors),
        "encoder": encoder_name,
    }
    return measure_ranges(by_width, provenance)
