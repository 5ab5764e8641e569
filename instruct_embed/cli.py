"""`instruct-embed`: prepare models, serve them on a local Triton server, and embed text.

Flags are parsed here into frozen option objects once; the commands below never see raw strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from instruct_embed.catalog import DEFAULT_MODEL, get_spec, model_names
from instruct_embed.catalog.enums import parse_enum

if TYPE_CHECKING:
    from instruct_embed.prepare import PrepareOptions
    from instruct_embed.repository.configs import ServingOptions


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    from instruct_embed.repository.targets import EncoderTarget
    from instruct_embed.runtime.graph_sessions import AUTO, REQUESTABLE_CPU_PRECISIONS

    p = sub.add_parser("prepare", help="build the transformers folder, the validated ONNX graph and the repository")
    p.add_argument("model", help=f"a catalog name: {', '.join(model_names())}")
    p.add_argument("--miniature", action="store_true", help="tiny random weights, real tokenizer: try the path offline")
    p.add_argument("--hf-dir", type=Path, help="use this local transformers folder instead of fetching weights")
    p.add_argument(
        "--target",
        default=EncoderTarget.PYTHON_ORT.value,
        choices=[t.value for t in EncoderTarget],
        help="encoder backend: python_ort for the bundled CPU server, onnxruntime/tensorrt for the NGC container",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=["fp32", "fp16", "bf16"],
        help="weights of the exported graph: 16-bit halves memory on a GPU (pooling and outputs stay fp32); "
        "ONNX Runtime on CPU runs fp32 best",
    )
    p.add_argument(
        "--cpu-precision",
        default=AUTO,
        choices=REQUESTABLE_CPU_PRECISIONS,
        help="python_ort: auto (default) serves bf16 where the CPU has bf16 units and the model's bf16 validation "
        "passes, fp32 elsewhere; fp32 runs the graph on ONNX Runtime; bf16 runs it on OpenVINO with the CPU's bf16 "
        "matrix units (AMX / AVX512-BF16 only), 2-4x faster; int8 runs the statically quantised graph (opt-in: "
        "it costs retrieval quality, benchmarks/scifact.md); every one is validated against the fp32 reference",
    )
    p.add_argument(
        "--torch-device",
        default="cuda",
        choices=["cuda", "cpu"],
        help="cuda target: where its PyTorch module runs (cpu: the same code on CPU tensors, to check a repository)",
    )
    _add_encoder_flags(p)
    p.add_argument(
        "--repository",
        type=Path,
        help="render into this repository (default: the cache home's; miniatures go to its miniature-repository)",
    )
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own modeling code (read it first)"
    )
    p.add_argument("--force", action="store_true", help="export and validate again even if up to date")
    p.add_argument(
        "--optimize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fuse the graph with ONNX Runtime's transformer optimiser via optimum (default: BERT/XLM-R families "
        "on ONNX Runtime targets)",
    )
    p.add_argument("--json", action="store_true", help="print the produced paths as JSON")


def _add_encoder_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder-instances", type=int, help="encoder instances (default 2: one computes, one is fed)")
    p.add_argument(
        "--gpu-memory-fraction",
        type=float,
        default=0.0,
        help="cuda target: the share of the GPU's memory each encoder instance may hold (default 0: no cap)",
    )


def _add_serve(sub: argparse._SubParsersAction) -> None:
    from instruct_embed.runtime.graph_sessions import REQUESTABLE_CPU_PRECISIONS

    p = sub.add_parser("serve", help="start a local Triton server (bundled binary) and wait for Ctrl-C")
    p.add_argument("--model", action="append", help=f"model to serve (repeatable; default {DEFAULT_MODEL})")
    p.add_argument("--host", default="127.0.0.1", help="bind address; loopback unless you mean to expose it")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--repository", type=Path, help="serve this repository (default: the cache home's)")
    p.add_argument(
        "--miniature",
        action="store_true",
        help="serve the models' miniatures (`prepare MODEL --miniature`; built first where missing)",
    )
    p.add_argument("--no-prepare", action="store_true", help="do not prepare missing models first")
    p.add_argument(
        "--cpu-precision",
        choices=REQUESTABLE_CPU_PRECISIONS,
        help="(re)render the models' CPU encoder in this precision first, as `prepare --cpu-precision` does "
        "(bf16: OpenVINO on AMX / AVX512-BF16; default: keep what the repository has, auto when new)",
    )
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        help="cuda: (re)render the models' encoder as the cuda target (PyTorch on the GPU, the family's 16-bit "
        "precision; refused where no CUDA device is visible); cpu: the CPU encoder (default: keep what the "
        "repository has)",
    )
    _add_encoder_flags(p)
    p.add_argument("--no-example", action="store_true", help="skip the example query/document request")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instruct-embed", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="on a failure, show the traceback too")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_prepare(sub)
    _add_serve(sub)
    _register_optional_commands(sub)
    return parser


# Commands that live in their own packages: (module, function that adds the subparser).
PLUGGED_COMMANDS = (
    ("instruct_embed.build_engine", "register_build_engine"),
    ("instruct_embed.evaluation.cli", "register_eval"),
    ("instruct_embed.gateway.cli", "register_gateway"),
    ("instruct_embed.client.cli", "register_client_commands"),
)


def _register_optional_commands(sub: argparse._SubParsersAction) -> None:
    """Each registers a subparser with `set_defaults(handler=...)`."""
    import importlib

    for module_name, function in PLUGGED_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue  # that package is not part of this checkout
            raise
        getattr(module, function)(sub)


def cmd_prepare(args: argparse.Namespace) -> int:
    from instruct_embed.catalog import Precision
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.targets import EncoderTarget

    spec = get_spec(args.model)
    if spec.license.upper().startswith("CC-BY-NC"):
        print(f"note: {spec.name} is licensed {spec.license} (non-commercial use only)", file=sys.stderr)
    options = PrepareOptions(
        trust_remote_code=args.trust_remote_code,
        miniature=args.miniature,
        precision=parse_enum(Precision, args.precision, "precision"),
        hf_dir=args.hf_dir,
        repository=args.repository,
        serving=serving_options(args, parse_enum(EncoderTarget, args.target, "target")),
        force=args.force,
        optimize=args.optimize,
    )
    prepared = prepare_model(args.model, options)
    if args.json:
        print(prepared.to_json())
    else:
        print(f"{prepared.name}: {prepared.validation}\n  weights {prepared.hf_dir}")
        if prepared.onnx is not None:
            print(f"  onnx {prepared.onnx}")
        if prepared.repository is None:
            print(
                f"  licence {prepared.license}; repository not rendered yet: `instruct-embed build-engine "
                f"{prepared.name} --repository DIR` builds the plan from this graph, then renders the tensorrt_plan "
                "models"
            )
        else:
            from instruct_embed.repository.render import rendered_precision

            print(f"  repository {prepared.repository} (licence {prepared.license})")
            precision = rendered_precision(prepared.repository, prepared.name)
            if precision:
                print(f"  encoder {precision}")
    return 0


# A GPU computes a 64 x 512 batch about as fast as a smaller one: a larger budget per run than the CPU's 8192.
CUDA_TOKEN_BUDGET = 32768


def serving_options(args: argparse.Namespace, target: object) -> ServingOptions:
    """The ServingOptions the flags ask for, for `target` (an EncoderTarget)."""
    from instruct_embed.repository.configs import ServingOptions
    from instruct_embed.repository.targets import EncoderTarget, TorchDevice

    settings: dict[str, object] = {"target": target}
    if getattr(args, "cpu_precision", None) is not None and target is EncoderTarget.PYTHON_ORT:
        settings["cpu_precision"] = args.cpu_precision
    if args.encoder_instances is not None:
        settings["encoder_instances"] = args.encoder_instances
    if target is EncoderTarget.CUDA:
        device = parse_enum(TorchDevice, getattr(args, "torch_device", "cuda"), "torch device")
        settings.update(torch_device=device, gpu_memory_fraction=args.gpu_memory_fraction)
        if device is TorchDevice.CUDA:
            settings["token_budget"] = CUDA_TOKEN_BUDGET
    return ServingOptions(**settings)  # type: ignore[arg-type]


def cmd_serve(args: argparse.Namespace) -> int:
    from instruct_embed.paths import miniature_repository_dir, repository_dir
    from instruct_embed.repository.render import rendered_models, rendered_precision
    from instruct_embed.server import LocalTritonServer, ServerOptions
    from instruct_embed.server.process import run_until_signalled

    models = tuple(args.model or [DEFAULT_MODEL])
    repository = args.repository or (miniature_repository_dir() if args.miniature else repository_dir())
    for name in models:
        get_spec(name)  # an unknown name fails here, listing the known ones
    _prepare_for_serving(models, repository, args)
    missing = [name for name in models if not (repository / name / "config.pbtxt").exists()]
    if missing:
        raise SystemExit(
            f"error: {', '.join(missing)} not prepared in {repository}; run `instruct-embed prepare "
            f"{missing[0]}{' --miniature' if args.miniature else ''}`, or serve without --no-prepare"
        )
    for name in models:
        precision = rendered_precision(repository, name)
        print(f"{name}: encoder {precision or 'precision not recorded (rendered by an older version)'}", flush=True)
    loaded = tuple(name for n in models for name in rendered_models(repository, n))
    options = ServerOptions(
        repository=repository,
        models=loaded,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        log_file=repository.parent / "tritonserver.log",
    )
    server = LocalTritonServer(options)
    print(f"starting tritonserver on {args.host} (http {args.http_port}, grpc {args.grpc_port}) ...", flush=True)
    server.start()
    print(f"ready: {', '.join(models)}; log {server.log_file}", flush=True)
    if not args.no_example:
        _print_example(models[0], server.http_url)
    print("serving; Ctrl-C to stop", flush=True)
    return run_until_signalled(server)


def _prepare_for_serving(models: Sequence[str], repository: Path, args: argparse.Namespace) -> None:
    """Prepare what is missing; with --cpu-precision, render every model again in that precision (validated); warn
    about a model rendered by another version of this package (it keeps that version's runtime code)."""
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.render import rendered_models, runtime_differs
    from instruct_embed.repository.targets import EncoderTarget

    for name in models:
        rendered = (repository / name / "config.pbtxt").exists()
        if args.device == "cuda":
            print(f"preparing {name} with a cuda encoder (PyTorch on the GPU) ...", flush=True)
            serving = serving_options(args, EncoderTarget.CUDA)
            prepare_model(name, PrepareOptions(repository=repository, serving=serving, miniature=args.miniature))
        elif args.cpu_precision is not None or args.device == "cpu":
            precision = args.cpu_precision or "auto"
            print(f"preparing {name} with a CPU encoder, precision {precision} ...", flush=True)
            serving = serving_options(args, EncoderTarget.PYTHON_ORT)
            prepare_model(name, PrepareOptions(repository=repository, serving=serving, miniature=args.miniature))
        elif not args.no_prepare and not rendered:
            print(f"preparing {name}{' (miniature)' if args.miniature else ''} (first run only) ...", flush=True)
            _prepare_or_point_to_the_miniature(name, PrepareOptions(repository=repository, miniature=args.miniature))
        elif rendered and any(runtime_differs(repository / step) for step in rendered_models(repository, name)[1:]):
            # Not re-rendered here: the repository may hold options chosen on purpose (prepare's flags, Python).
            print(
                f"warning: {name} in {repository} was rendered by another instruct-embed version and runs that "
                f"version's code and settings; `instruct-embed prepare {name}` renders it with this one's",
                file=sys.stderr,
                flush=True,
            )


def _prepare_or_point_to_the_miniature(name: str, options: PrepareOptions) -> None:
    """Prepare `name`; where its weights cannot be had but its miniature is prepared, say how to serve that."""
    from instruct_embed.local_models.hub import HubUnavailable
    from instruct_embed.paths import miniature_repository_dir
    from instruct_embed.prepare import prepare_model

    try:
        prepare_model(name, options)
    except HubUnavailable as error:
        if options.miniature or not (miniature_repository_dir() / name / "config.pbtxt").exists():
            raise
        hint = f"its miniature is prepared: `instruct-embed serve --miniature --model {name}`"
        raise HubUnavailable(f"{error}; {hint}") from error


def _print_example(model: str, http_url: str) -> None:
    from instruct_embed.client import EmbedClient

    query, document = "how much protein should a female eat", "Women need about 46 grams of protein per day."
    with EmbedClient(http_url) as client:
        q = client.encode(model, [query], is_query=True)[0]
        d = client.encode(model, [document])[0]
    print(f"example: query {query!r} -> {q.shape[0]}-d vector, norm {float((q**2).sum() ** 0.5):.4f}")
    print(f"         document -> {d.shape[0]}-d vector; cosine(query, document) = {float(q @ d):.4f}")
    body = json.dumps(
        {
            "inputs": [
                {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [query]},
                {"name": "ROLE", "shape": [1, 1], "datatype": "BYTES", "data": ["query"]},
            ]
        }
    )
    print(f"try it: curl -s http://{http_url}/v2/models/{model}/infer -d '{body}'")


COMMANDS = {"prepare": cmd_prepare, "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    if handler is None:
        raise SystemExit(f"unknown command {args.command}")
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.debug:
            raise
        print(f"error: {failure_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, KeyError) else 1


def failure_line(error: Exception) -> str:
    """What a failed command prints: the error's own message, which names the cause and the fix, for errors
    this project raises (and for the system's: a missing file, a refused connection); for anything else, a bug,
    its type too and where to see more."""
    if isinstance(error, KeyError):  # unknown model names list the valid ones
        return str(error.args[0]) if error.args else "unknown name"
    own = type(error).__module__.split(".")[0] == "instruct_embed"
    if own or isinstance(error, OSError):
        return str(error) or type(error).__name__
    return f"unexpected {type(error).__name__}: {error} (a bug: `instruct-embed --debug ...` shows the traceback)"


if __name__ == "__main__":
    sys.exit(main())
