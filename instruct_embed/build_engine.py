"""`instruct-embed build-engine MODEL`: flags -> EngineBuildOptions -> export's pipeline -> the repository's
tensorrt_plan rendering. Registered by the main CLI; it joins export and repository, which do not import each
other that way round."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instruct_embed.catalog import Precision, model_names
from instruct_embed.catalog.enums import parse_enum
from instruct_embed.export.tensorrt.builder import DEFAULT_OPT_LEVEL, DEFAULT_WORKSPACE_GIB, BuildError
from instruct_embed.export.tensorrt.engine_graph import EngineGraphError
from instruct_embed.export.tensorrt.environment import MissingRequirement
from instruct_embed.export.tensorrt.parity import DEFAULT_MIN_COSINE, ParityError
from instruct_embed.export.tensorrt.pipeline import (
    BuiltEngine,
    EngineBuildOptions,
    EngineOutcome,
    GraphMissing,
    build_model_engine,
)
from instruct_embed.export.tensorrt.precision import PrecisionError
from instruct_embed.export.tensorrt.profiles import PlanError

# Exit codes: 1 the engine was built but is wrong or the build failed; 2 it could not be attempted here.
FAILED, CANNOT_RUN = 1, 2


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register_build_engine(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "build-engine",
        help="build a TensorRT plan (needs TensorRT and a GPU), check it against ONNX Runtime fp32, render it",
    )
    p.add_argument("model", help=f"a catalog name: {', '.join(model_names())}")
    p.add_argument(
        "--precision",
        choices=[p.value for p in Precision],
        help="engine precision (default: the spec's, fp16 for BERT/XLM-R, bf16 for decoders, which overflow in fp16)",
    )
    p.add_argument(
        "--workspace-gib",
        type=float,
        default=DEFAULT_WORKSPACE_GIB,
        help="scratch memory TensorRT may use per layer; too little rules out the fastest kernels",
    )
    p.add_argument(
        "--opt-level",
        type=int,
        default=DEFAULT_OPT_LEVEL,
        choices=range(6),
        help="builder optimisation level 0-5: higher searches longer for faster kernels",
    )
    p.add_argument(
        "--timing-cache",
        type=Path,
        help="timing cache file, reused and updated (default: one per GPU architecture and TensorRT version)",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        help="largest batch the engine and Triton accept (default: 32768 tokens' worth, at most 64)",
    )
    p.add_argument(
        "--max-sequence",
        type=int,
        help="longest sequence the engine accepts; the repository truncates there (default: the model's, "
        "at most 4096 for decoders, whose attention memory grows with its square)",
    )
    p.add_argument(
        "--buckets",
        type=int,
        nargs="+",
        default=[],
        help="sequence upper bounds, one optimisation profile each, so short texts run on kernels tuned for them",
    )
    p.add_argument(
        "--repository",
        type=Path,
        nargs="?",
        const=None,
        default=argparse.SUPPRESS,
        help="render the tensorrt_plan repository after a passing build (default folder: the cache home's)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="prepare the engine graph and print the plan and the trtexec/polygraphy commands; build nothing",
    )
    p.add_argument(
        "--instances-per-gpu",
        type=_positive,
        default=EngineBuildOptions.instances_per_gpu,
        help="encoder instances per GPU in the rendered repository; they share the engine's weights, each adds its "
        "activations. Two by default: behind one busy instance Triton's batcher can leave a burst's last "
        "requests waiting up to 0.5 s; 1 fits a 7B model on a 40 GB card",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the plan was built from the same inputs")
    p.add_argument("--trust-remote-code", action="store_true", help="allow the model's own modeling code (read it)")
    p.add_argument(
        "--min-cosine",
        type=float,
        default=DEFAULT_MIN_COSINE,
        help="parity gate: every engine vector vs ONNX Runtime fp32, and batched vs alone",
    )
    p.set_defaults(handler=build_engine_main)
    return p


def options_from_args(args: argparse.Namespace) -> EngineBuildOptions:
    repository: Path | None = None
    if hasattr(args, "repository"):
        from instruct_embed.paths import repository_dir

        repository = args.repository or repository_dir()
    return EngineBuildOptions(
        model=args.model,
        precision=None if args.precision is None else parse_enum(Precision, args.precision, "precision"),
        workspace_gib=args.workspace_gib,
        opt_level=args.opt_level,
        timing_cache=args.timing_cache,
        max_batch_size=args.max_batch_size,
        max_sequence=args.max_sequence,
        buckets=tuple(args.buckets),
        repository=repository,
        dry_run=args.dry_run,
        trust_remote_code=args.trust_remote_code,
        min_cosine=args.min_cosine,
        force=args.force,
        instances_per_gpu=args.instances_per_gpu,
    )


def render_built_engine(built: BuiltEngine, repository: Path, instances_per_gpu: int) -> list[Path]:
    from instruct_embed.repository.tensorrt_config import GpuServingOptions
    from instruct_embed.repository.tensorrt_render import render_tensorrt_model

    options = GpuServingOptions(instances_per_gpu=instances_per_gpu)
    return render_tensorrt_model(
        built.spec,
        built.tokenizer_json,
        built.engines,
        repository,
        built.plan,
        built.profiles,
        built.signature,
        options,
    )


def build_and_render(options: EngineBuildOptions) -> EngineOutcome:
    """The pipeline, then (with `options.repository`) the repository of the plans that passed."""
    return build_model_engine(options, render=render_built_engine)


def build_engine_main(args: argparse.Namespace) -> int:
    """The build-engine command; prints `error: ...` and returns non-zero instead of raising."""
    try:
        build_and_render(options_from_args(args))
    except (MissingRequirement, GraphMissing, PlanError, PrecisionError, EngineGraphError) as error:
        print(f"error: {error}", file=sys.stderr)
        return CANNOT_RUN
    except (BuildError, ParityError) as error:
        print(f"error: {error}", file=sys.stderr)
        return FAILED
    return 0
