"""`instruct-embed build-engine`: flags, the dry run on a tiny real model, and clear failures where it cannot run."""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np
import pytest

from instruct_embed.build_engine import CANNOT_RUN, options_from_args, register_build_engine
from instruct_embed.export.tensorrt.environment import missing_requirements
from instruct_embed.export.tensorrt.pipeline import PARITY_SUFFIX, served_engines
from tests.unit.tensorrt_support import TINY_MODEL, shared_tiny_home


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="instruct-embed")
    register_build_engine(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(["build-engine", *argv])
    return args.handler(args)


@pytest.fixture
def tiny_home(monkeypatch: pytest.MonkeyPatch):
    paths = shared_tiny_home()
    monkeypatch.setenv("INSTRUCT_EMBED_HOME", str(paths.root.parent.parent))
    return paths


def test_flags_become_options() -> None:
    argv = "build-engine e5-large-v2 --precision fp32 --buckets 128 256 --workspace-gib 8 --opt-level 5"
    argv += " --timing-cache /c/t.cache --max-batch-size 16 --repository /r"
    args = _parser().parse_args(argv.split())
    options = options_from_args(args)
    assert (options.precision.value, options.buckets, options.workspace_gib, options.opt_level) == (
        "fp32",
        (128, 256),
        8.0,
        5,
    )
    assert (options.timing_cache, options.max_batch_size, options.repository) == (Path("/c/t.cache"), 16, Path("/r"))
    assert options_from_args(_parser().parse_args(["build-engine", "e5-large-v2"])).repository is None


def test_instances_per_gpu_default_to_two_and_refuse_zero(capsys) -> None:
    default = options_from_args(_parser().parse_args(["build-engine", "e5-large-v2"]))
    assert default.instances_per_gpu == 2
    one = options_from_args(_parser().parse_args(["build-engine", "e5-large-v2", "--instances-per-gpu", "1"]))
    assert one.instances_per_gpu == 1
    with pytest.raises(SystemExit):
        _parser().parse_args(["build-engine", "e5-large-v2", "--instances-per-gpu", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_dry_run_prepares_the_graph_and_prints_the_commands(tiny_home, capsys) -> None:
    assert _run([TINY_MODEL, "--dry-run", "--buckets", "64", "--max-batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert f"{TINY_MODEL}: fp16 engine, batch 1-8 (opt 4), sequence buckets 1-64, 65-256" in out
    assert "--stronglyTyped" in out and "--minShapes=input_ids:1x1,attention_mask:1x1" in out
    assert "--maxShapes=input_ids:8x256,attention_mask:8x256" in out
    assert "polygraphy run" in out and "--model-type engine" in out
    assert (tiny_home.onnx_dir / "model.fp16.trt.onnx").is_file()
    assert (tiny_home.onnx_dir / "model.fp32.trt.onnx").is_file()  # Polygraphy's int32 fp32 reference
    loader = tiny_home.root / "tensorrt" / "polygraphy" / "parity_data.py"
    feeds = list(runpy.run_path(str(loader))["load_data"]())
    assert feeds and all(f["input_ids"].dtype == np.int32 and f["input_ids"].shape[1] <= 64 for f in feeds)
    assert not list((tiny_home.root / "tensorrt").glob("*.plan"))  # a dry run builds nothing


@pytest.mark.skipif(not missing_requirements(), reason="TensorRT and a GPU are both present here")
def test_without_tensorrt_or_gpu_the_build_names_what_is_missing(tiny_home, capsys) -> None:
    assert _run([TINY_MODEL]) == CANNOT_RUN
    err = capsys.readouterr().err
    assert err.startswith("error: cannot build a TensorRT engine here; missing: ")
    for missing in missing_requirements():
        assert missing in err


def test_missing_graph_and_weights_point_to_prepare(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INSTRUCT_EMBED_HOME", str(tmp_path))
    assert _run(["e5-large-v2", "--dry-run"]) == CANNOT_RUN
    assert "run `instruct-embed prepare e5-large-v2` first" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["e5-mistral-7b-instruct", "--precision", "fp16", "--dry-run"], "overflows in fp16"),
        (["e5-large-v2", "--buckets", "1024", "--dry-run"], "exceeds the max sequence 512"),
    ],
)
def test_refusals_exit_with_a_reason(argv, message, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INSTRUCT_EMBED_HOME", str(tmp_path))
    assert _run(argv) == CANNOT_RUN
    assert message in capsys.readouterr().err


def test_only_plans_that_passed_parity_are_served(tmp_path) -> None:
    for name in ("model.sm80.plan", "model.sm90.plan", "model.sm86.plan.rejected"):
        (tmp_path / name).write_bytes(b"placeholder")
    (tmp_path / f"model.sm90.plan{PARITY_SUFFIX}").write_text("min cosine ...")
    assert served_engines(tmp_path) == {"9.0": tmp_path / "model.sm90.plan"}
