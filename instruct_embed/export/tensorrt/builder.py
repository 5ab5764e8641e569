"""The TensorRT 10 build: strongly typed network from the ONNX parser, profiles, workspace, timing cache.

Written against the documented TensorRT 10 Python API; `tensorrt` is imported only when `build_engine` runs,
and a module object can be passed in its place (the unit tests pass a recording double to check the calls).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .environment import import_tensorrt
from .profiles import Profile

GIB = 1024**3
DEFAULT_WORKSPACE_GIB = 4.0
DEFAULT_OPT_LEVEL = 3  # TensorRT's default: levels 4-5 search longer for little gain on transformer encoders


class BuildError(RuntimeError):
    """The ONNX parser rejected the graph, or TensorRT could not build it."""


@dataclass(frozen=True)
class BuildRequest:
    """One engine build. `onnx_path` is the prepared engine graph (engine_graph.py), int32 ids."""

    onnx_path: Path
    engine_path: Path
    profiles: Sequence[Profile]
    workspace_gib: float = DEFAULT_WORKSPACE_GIB
    opt_level: int = DEFAULT_OPT_LEVEL
    timing_cache: Path | None = None

    def __post_init__(self) -> None:
        if not self.profiles:
            raise ValueError("a build needs at least one optimisation profile")
        if not 0 <= self.opt_level <= 5:
            raise ValueError(f"builder optimisation level must be 0..5, got {self.opt_level}")
        if self.workspace_gib <= 0:
            raise ValueError(f"workspace must be positive, got {self.workspace_gib} GiB")

    @property
    def workspace_bytes(self) -> int:
        return int(self.workspace_gib * GIB)


@dataclass(frozen=True)
class BuildResult:
    engine_path: Path
    seconds: float
    engine_bytes: int
    timing_cache: Path | None


def _shape(dims: Sequence[int]) -> str:
    return "x".join(str(d) for d in dims)


def _shapes(profile: Profile, which: str) -> str:
    return ",".join(f"{name}:{_shape(getattr(r, which))}" for name, r in profile.shapes.items())


def trtexec_command(request: BuildRequest, trtexec: str = "trtexec") -> list[str]:
    """The trtexec invocation that builds the same engine (one --min/opt/maxShapes triple per profile)."""
    command = [
        trtexec,
        f"--onnx={request.onnx_path}",
        f"--saveEngine={request.engine_path}",
        "--stronglyTyped",
        f"--memPoolSize=workspace:{round(request.workspace_gib * 1024)}",  # MiB
        f"--builderOptimizationLevel={request.opt_level}",
    ]
    if request.timing_cache is not None:
        command.append(f"--timingCacheFile={request.timing_cache}")
    for profile in request.profiles:
        command += [
            f"--minShapes={_shapes(profile, 'min')}",
            f"--optShapes={_shapes(profile, 'opt')}",
            f"--maxShapes={_shapes(profile, 'max')}",
        ]
    command.append("--skipInference")
    return command


def format_command(command: Sequence[str]) -> str:
    return shlex.join(command)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _parse(trt: ModuleType, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so external weight files resolve relative to the graph.
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError(f"TensorRT's ONNX parser rejected {onnx_path}: " + " | ".join(errors or ["no detail"]))
    return network, parser


def _check_inputs(trt: ModuleType, network: Any, profiles: Sequence[Profile]) -> None:
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    wanted = set(profiles[0].shapes)
    if set(inputs) != wanted:
        raise BuildError(f"network inputs {sorted(inputs)} differ from the profiles' {sorted(wanted)}")
    for name, tensor in inputs.items():
        if tensor.dtype != trt.int32:
            raise BuildError(f"input {name!r} is {tensor.dtype}, not int32: feed the prepared engine graph")


def _load_timing_cache(config: Any, path: Path, say: Callable[[str], None]) -> None:
    blob = path.read_bytes() if path.exists() else b""
    cache = config.create_timing_cache(blob)
    # ignore_mismatch=False: a cache from another GPU or TensorRT version is refused, not trusted.
    if cache is None or not config.set_timing_cache(cache, False):
        say(f"timing cache {path} is from another GPU or TensorRT version; starting an empty one")
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _save_timing_cache(config: Any, path: Path) -> None:
    cache = config.get_timing_cache()
    if path.exists():
        # Another build may have saved meanwhile: keep its entries as well as ours (skipped if incompatible).
        on_disk = config.create_timing_cache(path.read_bytes())
        if on_disk is not None:
            cache.combine(on_disk, False)
    _write_atomically(path, bytes(cache.serialize()))


def build_engine(
    request: BuildRequest, trt: ModuleType | None = None, say: Callable[[str], None] = print
) -> BuildResult:
    """Build and serialize the engine to `request.engine_path`; BuildError on parser or builder failure."""
    trt = trt or import_tensorrt()
    started = time.monotonic()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, request.onnx_path)
    _check_inputs(trt, network, request.profiles)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, request.workspace_bytes)
    config.builder_optimization_level = request.opt_level
    for profile in request.profiles:
        optimization_profile = builder.create_optimization_profile()
        for name, shapes in profile.shapes.items():
            optimization_profile.set_shape(name, shapes.min, shapes.opt, shapes.max)
        config.add_optimization_profile(optimization_profile)
    if request.timing_cache is not None:
        _load_timing_cache(config, request.timing_cache, say)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BuildError(f"TensorRT could not build {request.onnx_path} (see the TensorRT log above)")
    data = bytes(serialized)
    _write_atomically(request.engine_path, data)
    if request.timing_cache is not None:
        _save_timing_cache(config, request.timing_cache)
    return BuildResult(request.engine_path, time.monotonic() - started, len(data), request.timing_cache)
