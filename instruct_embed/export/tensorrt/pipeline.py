"""build-engine end to end: graphs -> engine graph -> plan -> parity -> (optionally) the GPU repository.

Everything up to the build runs anywhere (a dry run prints the plan and the trtexec / polygraphy commands);
the build, parity and rendering of a tensorrt_plan repository need TensorRT and a GPU. Rendering is the
repository package's (export never imports it): the caller passes it in (instruct_embed/build_engine.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from instruct_embed.catalog import ModelSpec, Precision, get_spec
from instruct_embed.paths import ModelPaths, home, model_paths

from .builder import (
    DEFAULT_OPT_LEVEL,
    DEFAULT_WORKSPACE_GIB,
    BuildRequest,
    build_engine,
    format_command,
    trtexec_command,
)
from .engine_graph import engine_graph_path, prepare_engine_graph
from .environment import cc_key, engine_filename, require_build_environment
from .parity import (
    DEFAULT_MIN_COSINE,
    ParityError,
    ParityReport,
    check_parity,
    ort_reference,
    parity_batches,
    parity_prompts,
    parity_tokenizer,
    polygraphy_commands,
    write_polygraphy_data,
)
from .precision import PrecisionError, resolve_precision
from .profiles import BatchingPlan, Profile, plan_batching, profiles_for_plan, select_profile
from .signature import GraphSignature

PARITY_SUFFIX = ".parity.txt"  # written beside a plan that passed; rendering serves only such plans
FINGERPRINT_SUFFIX = ".build.json"  # what the plan was built from, to skip an identical rebuild


# Two by default: behind one busy instance Triton's batcher can leave a burst's last requests waiting up to 0.5 s.
DEFAULT_INSTANCES_PER_GPU = 2


class GraphMissing(RuntimeError):
    """The ONNX graph to build from is absent and cannot be exported (no prepared weights)."""


@dataclass(frozen=True)
class EngineBuildOptions:
    """Parsed build-engine flags (see cli.py for what each one is for)."""

    model: str
    precision: Precision | None = None
    workspace_gib: float = DEFAULT_WORKSPACE_GIB
    opt_level: int = DEFAULT_OPT_LEVEL
    timing_cache: Path | None = None
    max_batch_size: int | None = None
    max_sequence: int | None = None
    buckets: tuple[int, ...] = ()
    repository: Path | None = None
    dry_run: bool = False
    trust_remote_code: bool = False
    min_cosine: float = DEFAULT_MIN_COSINE
    force: bool = False
    instances_per_gpu: int = DEFAULT_INSTANCES_PER_GPU  # the rendered encoder's


@dataclass(frozen=True)
class BuiltEngine:
    """What rendering the repository of a passing build takes."""

    spec: ModelSpec
    tokenizer_json: Path
    engines: dict[str, Path]  # by compute capability: every plan that passed parity
    plan: BatchingPlan
    profiles: list[Profile]
    signature: GraphSignature


# Writes the repository folders of a built engine into `repository`; returns them.
Renderer = Callable[[BuiltEngine, Path, int], list[Path]]


@dataclass(frozen=True)
class EngineOutcome:
    engine: Path | None
    parity: ParityReport | None
    repository: list[Path]


def ensure_graph(spec: ModelSpec, paths: ModelPaths, precision: Precision, trust_remote_code: bool) -> Path:
    """paths.onnx_file(precision), exported from the prepared transformers folder when missing or older."""
    target = paths.onnx_file(precision.value)
    weights = [*paths.hf_dir.glob("*.safetensors"), paths.hf_dir / "config.json"]
    newest = max((w.stat().st_mtime for w in weights if w.exists()), default=0.0)
    if target.exists() and target.stat().st_mtime >= newest:
        return target
    if not (paths.hf_dir / "config.json").exists():
        raise GraphMissing(
            f"{target} does not exist and there are no weights at {paths.hf_dir} to export it from; "
            f"run `instruct-embed prepare {spec.name}` first"
        )
    import torch

    from ..onnx_export import ExportOptions, export_onnx

    device = "cuda" if torch.cuda.is_available() else "cpu"
    options = ExportOptions(precision=precision, trust_remote_code=trust_remote_code, device=device)
    return export_onnx(spec, paths.hf_dir, target, options)


def default_timing_cache(compute_capability: tuple[int, int] | None, tensorrt_version: str) -> Path:
    """One cache per GPU architecture and TensorRT version: a cache from another is useless (and rejected)."""
    arch = engine_filename(compute_capability).split(".")[1] if compute_capability else "smXX"
    return home() / "tensorrt" / f"timing-cache.{arch}.trt{tensorrt_version}.bin"


def served_engines(engine_dir: Path) -> dict[str, Path]:
    """Plans in `engine_dir` that passed parity, keyed by compute capability ('9.0')."""
    engines = {}
    for plan in sorted(engine_dir.glob("model.sm*.plan")):
        if plan.with_name(plan.name + PARITY_SUFFIX).exists():
            arch = plan.name.split(".")[1].removeprefix("sm")
            engines[cc_key((int(arch[:-1]), int(arch[-1])))] = plan
    return engines


def build_fingerprint(request: BuildRequest, source: Path, tensorrt_version: str, min_cosine: float) -> str:
    """What a plan was built from and with: a plan whose fingerprint matches is not rebuilt."""
    stat = source.stat()
    return json.dumps(
        {
            "tensorrt": tensorrt_version,
            "source": [str(source), stat.st_size, stat.st_mtime_ns],
            "profiles": [{n: [r.min, r.opt, r.max] for n, r in p.shapes.items()} for p in request.profiles],
            "workspace_bytes": request.workspace_bytes,
            "opt_level": request.opt_level,
            "min_cosine": min_cosine,
        },
        sort_keys=True,
    )


def _summary(spec: ModelSpec, precision: Precision, plan: BatchingPlan) -> str:
    ranges = ", ".join(f"{low}-{high}" for low, high in plan.sequence_ranges)
    return (
        f"{spec.name}: {precision.value} engine, batch 1-{plan.max_batch_size} (opt {plan.opt_batch}), "
        f"sequence buckets {ranges}; the repository truncates at {plan.max_sequence} tokens"
    )


def _build_and_check(
    request: BuildRequest,
    batches: list,
    dense: str,
    reference: Path,
    spec: ModelSpec,
    options: EngineBuildOptions,
    say: Callable[[str], None],
) -> ParityReport:
    """Build, then run parity; a plan that fails parity is renamed *.rejected so nothing serves it."""
    result = build_engine(request)
    say(f"built {result.engine_path} ({result.engine_bytes / 1e6:.1f} MB) in {result.seconds:.0f} s")
    from .runner import EngineRunner

    runner = EngineRunner(result.engine_path)
    run_reference = ort_reference(reference, spec)
    try:
        report = check_parity(batches, lambda f: runner.run(f)[dense], run_reference, options.min_cosine)
    except ParityError:
        os.replace(result.engine_path, result.engine_path.with_name(result.engine_path.name + ".rejected"))
        raise
    say(f"parity: {report}")
    return report


def build_model_engine(
    options: EngineBuildOptions, say: Callable[[str], None] = print, render: Renderer | None = None
) -> EngineOutcome:
    """Run the pipeline; raises the module errors (MissingRequirement, PlanError, PrecisionError, ...). With
    `options.repository`, `render` writes the repository after a passing build."""
    if options.repository is not None and render is None:
        raise ValueError("a repository to render needs a renderer (instruct_embed.build_engine passes one)")
    spec = get_spec(options.model)
    paths = model_paths(spec.name)
    precision = resolve_precision(spec, options.precision)
    plan = plan_batching(spec, options.max_batch_size, options.max_sequence, options.buckets)
    say(_summary(spec, precision, plan))

    environment = None if options.dry_run else require_build_environment()
    if environment is not None and precision is Precision.BF16 and environment.compute_capability < (8, 0):
        raise PrecisionError(f"bf16 needs an Ampere or newer GPU (sm80+); {environment.gpu_name} is not")

    source = ensure_graph(spec, paths, precision, options.trust_remote_code)
    reference = ensure_graph(spec, paths, Precision.FP32, options.trust_remote_code)
    graph = prepare_engine_graph(spec, source, engine_graph_path(source), precision)
    reference_int32 = prepare_engine_graph(spec, reference, engine_graph_path(reference), Precision.FP32)
    say(f"engine graph: {graph.path} ({graph.norms_rewritten} LayerNorms kept in fp32, int32 ids)")
    profiles = profiles_for_plan(plan, graph.signature.input_names)

    engine_dir = paths.root / "tensorrt"
    capability = environment.compute_capability if environment else None
    engine = engine_dir / (engine_filename(capability) if capability else "model.smXX.plan")
    version = environment.tensorrt_version if environment else "X"
    timing_cache = options.timing_cache or default_timing_cache(capability, version)
    request = BuildRequest(graph.path, engine, profiles, options.workspace_gib, options.opt_level, timing_cache)
    say("equivalent trtexec command:\n  " + format_command(trtexec_command(request)))

    tokenizer = parity_tokenizer(spec, paths.hf_dir / "tokenizer.json", plan)
    batches = parity_batches(spec, tokenizer, parity_prompts(spec), plan)
    first_profile = [b.feed for b in batches if select_profile(profiles, {k: v.shape for k, v in b.feed.items()}) == 0]
    loader = write_polygraphy_data(first_profile, engine_dir / "polygraphy" / "parity_data.py")
    commands = polygraphy_commands(reference_int32.path, engine, loader, loader.with_name("reference_outputs.json"))
    say("equivalent polygraphy commands (profile 0):\n" + "\n".join("  " + format_command(c) for c in commands))
    if options.dry_run:
        return EngineOutcome(None, None, [])

    fingerprint = build_fingerprint(request, source, version, options.min_cosine)
    fingerprint_file = engine.with_name(engine.name + FINGERPRINT_SUFFIX)
    parity_file = engine.with_name(engine.name + PARITY_SUFFIX)
    up_to_date = engine.exists() and parity_file.exists() and fingerprint_file.exists()
    if up_to_date and fingerprint_file.read_text() == fingerprint and not options.force:
        say(f"{engine} is up to date (same graph, profiles and TensorRT); parity: {parity_file.read_text().strip()}")
        report = None
    else:
        for stale in (parity_file, fingerprint_file):
            stale.unlink(missing_ok=True)
        report = _build_and_check(request, batches, graph.signature.outputs[0].name, reference, spec, options, say)
        parity_file.write_text(f"{report}\n")
        fingerprint_file.write_text(fingerprint)

    folders: list[Path] = []
    if options.repository is not None and render is not None:
        built = BuiltEngine(
            spec, paths.hf_dir / "tokenizer.json", served_engines(engine_dir), plan, profiles, graph.signature
        )
        folders = render(built, options.repository, options.instances_per_gpu)
        say(f"rendered {', '.join(str(f) for f in folders)}")
    return EngineOutcome(engine, report, folders)
