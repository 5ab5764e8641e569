"""Validation is a step of export: the ONNX graph against the PyTorch reference, failing loudly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from instruct_embed.model_repository.runtime.ort_encoder import OrtEncoder
from instruct_embed.model_repository.runtime.prompting import PromptTemplates, resolve_prompt
from instruct_embed.model_repository.runtime.tokenization import PromptTokenizer, TokenizerSettings

from instruct_embed.catalog import ModelSpec

from .reference import ReferenceEmbedder
from .sample_texts import VALIDATION_TEXTS


class ValidationError(RuntimeError):
    """An exported artifact does not reproduce the reference within the spec's tolerance."""


@dataclass(frozen=True)
class ValidationReport:
    min_cosine: float
    max_batch_vs_single: float  # largest 1 - cosine between a row computed in a batch and alone
    texts: int

    def __str__(self) -> str:
        return (
            f"min cosine vs reference {self.min_cosine:.6f} over {self.texts} texts; "
            f"batch vs single max deviation {self.max_batch_vs_single:.2e}"
        )


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def validate_onnx(
    spec: ModelSpec,
    hf_dir: Path,
    onnx_path: Path,
    texts: Sequence[str] = VALIDATION_TEXTS,
    trust_remote_code: bool = False,
    tolerance: float | None = None,
) -> ValidationReport:
    """Compare `onnx_path` with a freshly loaded reference on `texts` as queries and documents.

    The graph is fed by the server's own tokenizer code; the reference tokenises with transformers. Raises
    ValidationError when any cosine is below the tolerance, any value is NaN/Inf, or a batch differs from
    single requests.
    """
    tolerance = spec.tolerance if tolerance is None else tolerance
    templates = PromptTemplates.from_config(spec.runtime_config())
    tokenizer = PromptTokenizer(str(hf_dir / "tokenizer.json"), TokenizerSettings.from_config(spec.runtime_config()))
    prompts = [resolve_prompt(templates, t, role) for role in ("query", "document") for t in texts]
    encoder = OrtEncoder(str(onnx_path))
    batch = tokenizer.encode(prompts)
    served = encoder.run({"input_ids": batch.input_ids, "attention_mask": batch.attention_mask})["embedding"]
    singles = np.concatenate(
        [
            encoder.run({"input_ids": one.input_ids, "attention_mask": one.attention_mask})["embedding"]
            for one in (tokenizer.encode([p]) for p in prompts)
        ]
    )
    reference = ReferenceEmbedder(spec, hf_dir, trust_remote_code).embed([p.full for p in prompts])
    if not np.all(np.isfinite(served)):
        raise ValidationError(f"{spec.name}: the ONNX graph produced NaN or Inf")
    cosines = cosine_rows(served, reference)
    batch_vs_single = float(np.max(1.0 - cosine_rows(served, singles)))
    report = ValidationReport(float(cosines.min()), batch_vs_single, len(prompts))
    if report.min_cosine < tolerance:
        worst = int(np.argmin(cosines))
        raise ValidationError(
            f"{spec.name}: cosine {report.min_cosine:.6f} < tolerance {tolerance} on {prompts[worst].full[:80]!r}"
        )
    if batch_vs_single > 1.0 - tolerance:
        raise ValidationError(f"{spec.name}: a batch differs from single requests ({batch_vs_single:.2e})")
    return report
