"""Parity is a step of the build: the engine against ONNX Runtime fp32 on real texts, failing loudly.

Texts of several lengths (export/sample_texts.py) are tokenized by the server's own tokenizer code and run
alone, in full batches and per length bucket, so every profile and several batch sizes are exercised. A row must
be finite, within `min_cosine` of the fp32 reference, and within `min_cosine` of the same text run alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from instruct_embed.catalog import ModelSpec
from instruct_embed.catalog.tensors import encoder_input_names, encoder_outputs
from instruct_embed.runtime.prompting import Prompt, PromptTemplates, resolve_prompt
from instruct_embed.runtime.tokenization import PromptTokenizer, TokenizerSettings

from ..sample_texts import VALIDATION_TEXTS
from .profiles import BatchingPlan

DEFAULT_MIN_COSINE = 0.999
Feed = dict[str, np.ndarray]
Embed = Callable[[Mapping[str, np.ndarray]], np.ndarray]


class ParityError(RuntimeError):
    """The engine's vectors are not finite, drift from the fp32 reference, or change with the batch."""


@dataclass(frozen=True)
class ParityBatch:
    """Prompts `indices` run together; `feed` holds int64 arrays [len(indices), length] named as the inputs."""

    name: str
    indices: tuple[int, ...]
    feed: Feed


@dataclass
class ParityReport:
    min_cosine: float = 1.0  # engine vs fp32 reference, worst row
    min_batch_vs_single: float = 1.0  # a row in a batch vs the same text alone, worst row
    rows: int = 0
    shapes: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        shapes = ", ".join(f"{b}x{s}" for b, s in sorted(set(self.shapes)))
        return (
            f"min cosine vs ONNX Runtime fp32 {self.min_cosine:.6f}; batch vs single {self.min_batch_vs_single:.6f}; "
            f"{self.rows} rows over batch x sequence shapes {shapes}"
        )


def parity_prompts(spec: ModelSpec, texts: Sequence[str] = VALIDATION_TEXTS) -> list[Prompt]:
    templates = PromptTemplates.from_config(spec.runtime_config())
    return [resolve_prompt(templates, text, role) for role in ("query", "document") for text in texts]


def parity_tokenizer(spec: ModelSpec, tokenizer_json: Path, plan: BatchingPlan) -> PromptTokenizer:
    """The server's tokenizer, truncating at the engine's longest sequence (as the rendered preprocess does)."""
    config = {**spec.runtime_config(), "max_length": plan.max_sequence}
    return PromptTokenizer(str(tokenizer_json), TokenizerSettings.from_config(config))


def _feed(tokenizer: PromptTokenizer, prompts: Sequence[Prompt], names: Sequence[str]) -> Feed:
    return tokenizer.encode(prompts).feed(names)


def parity_batches(
    spec: ModelSpec, tokenizer: PromptTokenizer, prompts: Sequence[Prompt], plan: BatchingPlan
) -> list[ParityBatch]:
    """Every prompt alone, then all prompts in batches of the plan's maximum, then each bucket's prompts together."""
    names = encoder_input_names(spec)
    lengths = [int(tokenizer.encode([p]).token_counts[0]) for p in prompts]
    groups: list[tuple[str, tuple[int, ...]]] = [(f"single #{i}", (i,)) for i in range(len(prompts))]
    step = plan.max_batch_size
    everything = tuple(range(len(prompts)))
    groups += [(f"batch of {len(c)}", c) for c in (everything[i : i + step] for i in range(0, len(everything), step))]
    for low, high in plan.sequence_ranges:
        members = tuple(i for i, n in enumerate(lengths) if low <= n <= high)
        for start in range(0, len(members), step):
            chunk = members[start : start + step]
            if len(chunk) > 1:
                groups.append((f"bucket {low}-{high} batch of {len(chunk)}", chunk))
    return [ParityBatch(name, idx, _feed(tokenizer, [prompts[i] for i in idx], names)) for name, idx in groups]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-30)


def check_parity(
    batches: Sequence[ParityBatch],
    run_engine: Embed,
    run_reference: Embed,
    min_cosine: float = DEFAULT_MIN_COSINE,
) -> ParityReport:
    """Run every batch through both; ParityError (carrying the report) unless every row passes."""
    report = ParityReport()
    alone: dict[int, np.ndarray] = {}
    for batch in batches:
        engine = np.asarray(run_engine(batch.feed), dtype=np.float32)
        reference = np.asarray(run_reference(batch.feed), dtype=np.float32)
        report.rows += engine.shape[0]
        report.shapes.append(tuple(batch.feed["input_ids"].shape))  # type: ignore[arg-type]
        if engine.shape != reference.shape:
            report.problems.append(f"{batch.name}: engine shape {engine.shape} != reference {reference.shape}")
            continue
        if not np.all(np.isfinite(engine)):
            report.problems.append(f"{batch.name}: the engine returned NaN or Inf")
            continue
        cosines = _cosines(engine, reference)
        report.min_cosine = min(report.min_cosine, float(cosines.min()))
        if cosines.min() < min_cosine:
            report.problems.append(f"{batch.name}: cosine {cosines.min():.6f} < {min_cosine} vs fp32")
        if len(batch.indices) == 1:
            alone[batch.indices[0]] = engine[0]
            continue
        for row, index in enumerate(batch.indices):
            if index in alone:
                agreement = float(_cosines(engine[row : row + 1], alone[index][None])[0])
                report.min_batch_vs_single = min(report.min_batch_vs_single, agreement)
                if agreement < min_cosine:
                    report.problems.append(f"{batch.name}: text #{index} differs from its single run ({agreement:.6f})")
    if report.problems:
        raise ParityError(f"engine parity failed: {'; '.join(report.problems[:5])} ({report})")
    return report


def ort_reference(onnx_fp32: Path, spec: ModelSpec) -> Embed:
    """ONNX Runtime over the fp32 export (int64 ids), on CUDA when this onnxruntime has it, with TF32 off."""
    import onnxruntime as ort

    providers: list[str | tuple[str, dict[str, str]]] = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"use_tf32": "0"}))
    session = ort.InferenceSession(str(onnx_fp32), providers=providers)
    dense = encoder_outputs(spec)[0].name

    def run(feed: Mapping[str, np.ndarray]) -> np.ndarray:
        inputs = {i.name: feed[i.name].astype(np.int64) for i in session.get_inputs()}
        return session.run([dense], inputs)[0]

    return run


def polygraphy_commands(
    reference_onnx: Path,
    engine: Path,
    data_loader: Path,
    reference_outputs: Path,
    atol: float = 1e-2,
    rtol: float = 0.0,
) -> list[list[str]]:
    """Two `polygraphy run` calls reproducing the comparison by hand: ONNX Runtime fp32 saves, the engine compares.

    `reference_onnx` is the fp32 graph with int32 inputs (engine_graph.py) so one data loader feeds both. The
    element-wise tolerances are a coarse screen; the cosine gate in `check_parity` is the authority.
    """
    return [
        [
            "polygraphy",
            "run",
            str(reference_onnx),
            "--onnxrt",
            "--data-loader-script",
            str(data_loader),
            "--save-outputs",
            str(reference_outputs),
        ],
        [
            "polygraphy",
            "run",
            str(engine),
            "--model-type",
            "engine",
            "--trt",
            "--data-loader-script",
            str(data_loader),
            "--load-outputs",
            str(reference_outputs),
            "--atol",
            str(atol),
            "--rtol",
            str(rtol),
        ],
    ]


LOADER = '''"""Polygraphy data loader written by `instruct-embed build-engine`: real token ids, int32 ids."""

from pathlib import Path

import numpy as np

NAMES = {names}


def load_data():
    data = np.load(Path(__file__).with_suffix(".npz"))
    for index in range(int(data["count"])):
        yield {{name: data[f"b{{index}}__{{name}}"] for name in NAMES}}
'''


def write_polygraphy_data(feeds: Sequence[Mapping[str, np.ndarray]], script: Path) -> Path:
    """Write `script` (a Polygraphy data loader) and its .npz of int32 feeds; returns the script path."""
    if not feeds:
        raise ValueError("no feeds to write")
    names = list(feeds[0])
    arrays = {f"b{i}__{n}": np.asarray(f[n], dtype=np.int32) for i, f in enumerate(feeds) for n in names}
    script.parent.mkdir(parents=True, exist_ok=True)
    np.savez(script.with_suffix(".npz"), count=np.array(len(feeds)), **arrays)
    script.write_text(LOADER.format(names=json.dumps(names)))
    return script
