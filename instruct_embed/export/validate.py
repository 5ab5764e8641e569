"""Validation is a step of export: the ONNX graph against the PyTorch reference, failing loudly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from instruct_embed.catalog import ModelSpec, Output, Precision
from instruct_embed.catalog.tensors import INPUT_IDS
from instruct_embed.client.lexical import lexical_weights
from instruct_embed.runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings, SubBatchedEncoder
from instruct_embed.runtime.graph_sessions import BF16, FP32, cpu_has_bf16
from instruct_embed.runtime.prompting import Prompt, PromptTemplates, resolve_prompt
from instruct_embed.runtime.tokenization import PromptTokenizer, TokenizerSettings

from .oracles import reference_for
from .reference import Reference, ReferenceOutput
from .sample_texts import VALIDATION_TEXTS


class ValidationError(RuntimeError):
    """An exported artifact does not reproduce the reference within the spec's tolerance."""


class UnsupportedOnCpu(ValidationError):
    """The graph uses ops (bf16 ones) that ONNX Runtime's CPU provider does not implement, on a CPU without the bf16
    units OpenVINO would run them on."""


@dataclass(frozen=True)
class ValidationReport:
    min_cosine: float  # dense vectors vs the fp32 reference
    max_batch_vs_single: float  # largest 1 - cosine between a row computed in a batch and alone
    texts: int
    # BGE-M3: largest lexical-weight difference (a missing key counts), relative to the largest weight of all texts.
    sparse_max_rel_diff: float | None = None
    colbert_min_cosine: float | None = None  # BGE-M3: worst ColBERT vector vs the reference's

    def __str__(self) -> str:
        text = (
            f"min cosine vs reference {self.min_cosine:.6f} over {self.texts} texts; "
            f"batch vs single max deviation {self.max_batch_vs_single:.2e}"
        )
        if self.sparse_max_rel_diff is not None:
            text += f"; sparse max relative diff {self.sparse_max_rel_diff:.2e}"
        if self.colbert_min_cosine is not None:
            text += f"; colbert min cosine {self.colbert_min_cosine:.6f}"
        return text


# A 16-bit graph is held to this cosine against the fp32 reference (or the spec's own, if looser).
HALF_PRECISION_TOLERANCE = 0.999


def validation_tolerance(spec: ModelSpec, precision: Precision) -> float:
    """The spec's tolerance for fp32 graphs; at most HALF_PRECISION_TOLERANCE for fp16 and bf16 graphs."""
    return spec.tolerance if precision is Precision.FP32 else min(spec.tolerance, HALF_PRECISION_TOLERANCE)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def sparse_difference(a: dict[int, float], b: dict[int, float]) -> float:
    """Largest |a[k] - b[k]| over both dicts' keys (a missing key weighs 0)."""
    return max((abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in a.keys() | b.keys()), default=0.0)


def build_prompts(spec: ModelSpec, texts: Sequence[str]) -> list[Prompt]:
    """Each text as a query and as a document, through the server's own prompt resolution."""
    templates = PromptTemplates.from_config(spec.runtime_config())
    return [resolve_prompt(templates, t, role) for role in ("query", "document") for t in texts]


def server_tokenizer(spec: ModelSpec, hf_dir: Path) -> PromptTokenizer:
    """The tokenizer code the preprocess step runs, with the spec's settings."""
    return PromptTokenizer(str(hf_dir / "tokenizer.json"), TokenizerSettings.from_config(spec.runtime_config()))


def run_graph(
    tokenizer: PromptTokenizer, encoder: SubBatchedEncoder, prompts: Sequence[Prompt]
) -> dict[str, np.ndarray]:
    """Tokenise with the server's tokenizer code and run the graph once on the whole batch."""
    batch = tokenizer.encode(prompts)
    outputs = encoder.run(batch.feed(encoder.input_names))
    outputs[INPUT_IDS] = batch.input_ids
    outputs["token_counts"] = batch.token_counts
    return outputs


def _compare_bge_m3(served: dict[str, np.ndarray], reference: ReferenceOutput) -> tuple[float, float]:
    assert reference.sparse is not None and reference.colbert is not None
    sparse_diff, colbert_min = 0.0, 1.0
    scale = max((w for weights in reference.sparse for w in weights.values()), default=1.0)
    for row, count in enumerate(served["token_counts"].tolist()):
        weights = lexical_weights(served[INPUT_IDS][row, :count], served["sparse_weights"][row, :count])
        sparse_diff = max(sparse_diff, sparse_difference(weights, reference.sparse[row]))
        vectors = served["colbert_vectors"][row, 1:count]
        expected = reference.colbert[row]
        if vectors.shape != expected.shape:
            raise ValidationError(f"ColBERT row {row}: {vectors.shape} vectors, the reference has {expected.shape}")
        colbert_min = min(colbert_min, float(np.sum(vectors * expected, axis=1).min()))
    return sparse_diff / scale, colbert_min


def cpu_encoder_for(spec: ModelSpec, onnx_path: Path, cpu_precision: str) -> CpuEncoder:
    """The graph on CPU. A bf16 graph (built for GPUs) has no ONNX Runtime CPU kernels; OpenVINO runs it where the
    cores have bf16 units, which is how such a graph is validated without a GPU."""
    try:
        return CpuEncoder(str(onnx_path), CpuEncoderSettings(precision=cpu_precision))
    except Exception as error:  # onnxruntime raises its own NotImplemented for ops without a CPU kernel
        if "NOT_IMPLEMENTED" not in str(error):
            raise
        if cpu_precision == FP32 and cpu_has_bf16():
            return CpuEncoder(str(onnx_path), CpuEncoderSettings(precision=BF16))
        raise UnsupportedOnCpu(
            f"{spec.name}: neither ONNX Runtime's CPU provider (no bf16 kernels) nor OpenVINO (this CPU has no bf16 "
            f"units) can run {onnx_path.name}; validate it where a GPU provider exists: {error}"
        ) from error


def validate_onnx(
    spec: ModelSpec,
    hf_dir: Path,
    onnx_path: Path,
    texts: Sequence[str] = VALIDATION_TEXTS,
    trust_remote_code: bool = False,
    tolerance: float | None = None,
    reference: Reference | None = None,
    cpu_precision: str = FP32,
) -> ValidationReport:
    """Compare `onnx_path` with the fp32 reference on `texts` as queries and documents.

    The graph is fed by the server's own tokenizer code; the reference tokenises with transformers. Any
    precision is compared with the fp32 reference, so a 16-bit graph's report says what it costs. Raises
    ValidationError when any output holds NaN/Inf, a dense cosine (or, for BGE-M3, a ColBERT cosine) is below
    the tolerance, a lexical weight differs by more than 10 * (1 - tolerance) of the largest weight, or
    a batch differs from single requests. `cpu_precision` picks the CPU runtime the server will run it on
    ("bf16": OpenVINO with bf16 matrix units, graph_sessions.py).
    """
    encoder = cpu_encoder_for(spec, onnx_path, cpu_precision)
    return validate_encoder(spec, hf_dir, encoder, "the ONNX graph", texts, trust_remote_code, tolerance, reference)


def validate_encoder(
    spec: ModelSpec,
    hf_dir: Path,
    encoder: SubBatchedEncoder,
    what: str,
    texts: Sequence[str] = VALIDATION_TEXTS,
    trust_remote_code: bool = False,
    tolerance: float | None = None,
    reference: Reference | None = None,
) -> ValidationReport:
    """`encoder` (an ONNX graph's session, or the export's module on PyTorch: torch_session.py) against the fp32
    reference, as validate_onnx describes; `what` names it in errors."""
    tolerance = spec.tolerance if tolerance is None else tolerance
    prompts = build_prompts(spec, texts)
    tokenizer = server_tokenizer(spec, hf_dir)
    served = run_graph(tokenizer, encoder, prompts)
    for name in encoder.output_names:
        if not np.all(np.isfinite(served[name])):
            raise ValidationError(f"{spec.name}: {what}'s {name!r} holds NaN or Inf")
    singles = np.concatenate([run_graph(tokenizer, encoder, [p])["embedding"] for p in prompts])
    expected = (reference or reference_for(spec, hf_dir, trust_remote_code)).embed_prompts(prompts)
    cosines = cosine_rows(served["embedding"], expected.dense)
    batch_vs_single = float(np.max(1.0 - cosine_rows(served["embedding"], singles)))
    sparse_diff = colbert_min = None
    if Output.SPARSE in spec.outputs:
        sparse_diff, colbert_min = _compare_bge_m3(served, expected)
    report = ValidationReport(float(cosines.min()), batch_vs_single, len(prompts), sparse_diff, colbert_min)
    if report.min_cosine < tolerance:
        worst = int(np.argmin(cosines))
        raise ValidationError(
            f"{spec.name}: cosine {report.min_cosine:.6f} < tolerance {tolerance} on {prompts[worst].full[:80]!r}"
        )
    if batch_vs_single > 1.0 - tolerance:
        raise ValidationError(f"{spec.name}: a batch differs from single requests ({batch_vs_single:.2e})")
    if colbert_min is not None and colbert_min < tolerance:
        raise ValidationError(f"{spec.name}: ColBERT cosine {colbert_min:.6f} < tolerance {tolerance}")
    # Weights are not unit vectors: allow ten times the cosine's slack, relative to the largest weight seen.
    if sparse_diff is not None and sparse_diff > 10 * (1.0 - tolerance):
        raise ValidationError(f"{spec.name}: lexical weights differ by {sparse_diff:.2e} of the largest")
    return report
