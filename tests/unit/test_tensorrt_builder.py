"""The builder driven as far as it goes without TensorRT: a recording stand-in checks the TensorRT 10 call
sequence, the workspace, the profiles, the timing cache's load/combine/save and the errors.

Nothing here is a TensorRT result: the stand-in's "serialized network" is a marker string.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.export.tensorrt.builder import BuildError, BuildRequest, build_engine, trtexec_command
from instruct_embed.export.tensorrt.environment import (
    MissingRequirement,
    cc_key,
    engine_filename,
    import_tensorrt,
    missing_requirements,
    require_build_environment,
)
from instruct_embed.export.tensorrt.profiles import plan_profiles
from tests.unit.tensorrt_support import FakeTensorRT

INPUTS = {"input_ids": "int32", "attention_mask": "int32"}


def _request(tmp_path: Path, cache: Path | None = None, buckets: tuple[int, ...] = (128,)) -> BuildRequest:
    profiles = plan_profiles(get_spec("e5-large-v2"), max_batch_size=32, buckets=buckets)
    return BuildRequest(
        onnx_path=tmp_path / "model.fp16.trt.onnx",
        engine_path=tmp_path / "engines" / "model.sm90.plan",
        profiles=profiles,
        workspace_gib=2,
        opt_level=4,
        timing_cache=cache,
    )


def test_build_calls_the_tensorrt_10_api_in_order(tmp_path: Path) -> None:
    trt = FakeTensorRT(INPUTS)
    request = _request(tmp_path, cache=tmp_path / "timing.cache")
    result = build_engine(request, trt)
    assert trt.names()[:5] == [
        "Logger",
        "Builder",
        "builder.create_network",
        "OnnxParser",
        "parser.parse_from_file",
    ]
    assert ("builder.create_network", 1 << 1) in trt.calls  # only STRONGLY_TYPED: precision comes from the graph
    assert ("parser.parse_from_file", str(request.onnx_path)) in trt.calls
    assert ("config.set_memory_pool_limit", "WORKSPACE", 2 * 1024**3) in trt.calls
    assert ("config.builder_optimization_level=", 4) in trt.calls
    shapes = [c[1:] for c in trt.calls if c[0] == "profile.set_shape"]
    assert shapes == [
        ("input_ids", (1, 1), (16, 64), (32, 128)),
        ("attention_mask", (1, 1), (16, 64), (32, 128)),
        ("input_ids", (1, 129), (16, 320), (32, 512)),
        ("attention_mask", (1, 129), (16, 320), (32, 512)),
    ]
    assert trt.names().count("config.add_optimization_profile") == 2
    order = trt.names()
    assert order.index("config.set_timing_cache") < order.index("builder.build_serialized_network")
    assert result.engine_path.read_bytes() == b"fake-serialized-network: not an engine"
    assert result.engine_bytes == len(b"fake-serialized-network: not an engine")


def test_timing_cache_is_reused_and_merged_with_what_is_on_disk(tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old-timings")
    trt = FakeTensorRT(INPUTS)
    build_engine(_request(tmp_path, cache=cache), trt)
    assert ("config.create_timing_cache", b"old-timings") in trt.calls
    assert ("config.set_timing_cache", b"old-timings", False) in trt.calls  # mismatching caches are rejected
    assert ("cache.combine", b"old-timings", False) in trt.calls
    assert cache.read_bytes() == b"old-timings+new-timings+old-timings"


def test_a_timing_cache_from_another_gpu_is_replaced_not_trusted(tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"other-gpu-timings")
    trt = FakeTensorRT(INPUTS)
    said: list[str] = []
    build_engine(_request(tmp_path, cache=cache), trt, say=said.append)
    assert [c for c in trt.calls if c[0] == "config.set_timing_cache"] == [
        ("config.set_timing_cache", b"other-gpu-timings", False),
        ("config.set_timing_cache", b"", False),
    ]
    assert "another GPU or TensorRT version" in said[0]


def test_first_build_creates_the_timing_cache(tmp_path: Path) -> None:
    cache = tmp_path / "caches" / "timing.cache"
    trt = FakeTensorRT(INPUTS)
    build_engine(_request(tmp_path, cache=cache), trt)
    assert ("config.create_timing_cache", b"") in trt.calls
    assert "cache.combine" not in trt.names()
    assert cache.read_bytes() == b"+new-timings"


def test_no_timing_cache_when_none_is_asked_for(tmp_path: Path) -> None:
    trt = FakeTensorRT(INPUTS)
    build_engine(_request(tmp_path), trt)
    assert not any("timing_cache" in name for name in trt.names())


def test_parser_errors_are_reported_and_nothing_is_written(tmp_path: Path) -> None:
    trt = FakeTensorRT(INPUTS, parse_ok=False)
    request = _request(tmp_path)
    with pytest.raises(BuildError, match=r"fake parser error 0 \| fake parser error 1"):
        build_engine(request, trt)
    assert not request.engine_path.exists()


def test_a_failed_build_raises_and_leaves_no_plan(tmp_path: Path) -> None:
    request = _request(tmp_path)
    with pytest.raises(BuildError, match="could not build"):
        build_engine(request, FakeTensorRT(INPUTS, build_ok=False))
    assert not request.engine_path.exists()


def test_int64_inputs_are_refused_before_building(tmp_path: Path) -> None:
    trt = FakeTensorRT({"input_ids": "int64", "attention_mask": "int64"})
    with pytest.raises(BuildError, match="not int32: feed the prepared engine graph"):
        build_engine(_request(tmp_path), trt)
    assert "builder.build_serialized_network" not in trt.names()


def test_network_inputs_must_match_the_profiles(tmp_path: Path) -> None:
    trt = FakeTensorRT({"input_ids": "int32", "attention_mask": "int32", "pool_mask": "int32"})
    with pytest.raises(BuildError, match="differ from the profiles"):
        build_engine(_request(tmp_path), trt)


def test_trtexec_command_reproduces_the_build(tmp_path: Path) -> None:
    request = _request(tmp_path, cache=tmp_path / "timing.cache")
    command = trtexec_command(request)
    assert command == [
        "trtexec",
        f"--onnx={tmp_path}/model.fp16.trt.onnx",
        f"--saveEngine={tmp_path}/engines/model.sm90.plan",
        "--stronglyTyped",
        "--memPoolSize=workspace:2048",
        "--builderOptimizationLevel=4",
        f"--timingCacheFile={tmp_path}/timing.cache",
        "--minShapes=input_ids:1x1,attention_mask:1x1",
        "--optShapes=input_ids:16x64,attention_mask:16x64",
        "--maxShapes=input_ids:32x128,attention_mask:32x128",
        "--minShapes=input_ids:1x129,attention_mask:1x129",
        "--optShapes=input_ids:16x320,attention_mask:16x320",
        "--maxShapes=input_ids:32x512,attention_mask:32x512",
        "--skipInference",
    ]
    assert "--fp16" not in command  # deprecated with strongly typed networks
    assert shlex.split(shlex.join(command)) == command


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"opt_level": 6}, "0..5"), ({"workspace_gib": 0}, "positive"), ({"profiles": []}, "at least one")],
)
def test_build_requests_are_validated(tmp_path: Path, kwargs: dict, message: str) -> None:
    base = {"onnx_path": tmp_path / "g.onnx", "engine_path": tmp_path / "e.plan"}
    base["profiles"] = plan_profiles(get_spec("e5-large-v2"))
    with pytest.raises(ValueError, match=message):
        BuildRequest(**{**base, **kwargs})


def test_engines_are_named_by_compute_capability() -> None:
    assert engine_filename((9, 0)) == "model.sm90.plan"
    assert engine_filename((8, 6)) == "model.sm86.plan"
    assert cc_key((8, 0)) == "8.0"


@pytest.mark.skipif(not missing_requirements(), reason="TensorRT and a GPU are both present here")
def test_missing_tensorrt_or_gpu_is_named() -> None:
    with pytest.raises(MissingRequirement) as raised:
        require_build_environment()
    message = str(raised.value)
    for missing in missing_requirements():
        assert missing in message
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert "`tensorrt` Python package" in message
        with pytest.raises(MissingRequirement, match="tensorrt"):
            import_tensorrt()
