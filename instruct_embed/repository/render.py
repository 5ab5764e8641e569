"""Writes a model's Triton models (ensemble, preprocess, encoder, postprocess) into a repository folder."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from instruct_embed import runtime
from instruct_embed.catalog import ModelSpec
from instruct_embed.runtime.contract import (
    ENCODER_PRECISION_KEY,
    INT8_RANGES_FILE,
    POSTPROCESS,
    PRECISION_CHOICE_KEY,
    PREPROCESS,
    SPEC_PARAMETER,
)
from instruct_embed.runtime.encoder_step import WEIGHTS_DIR
from instruct_embed.runtime.preprocess import TOKENIZER_FILE

from .configs import (
    ServingOptions,
    encoder_config,
    ensemble_config,
    postprocess_config,
    postprocess_name,
    preprocess_config,
)
from .layout import CONFIG_FILE, PYTHON_MODEL_FILE, VERSION, python_model, read_config, write_config
from .targets import EncoderTarget

__all__ = [
    "ModelArtifacts",
    "read_config",
    "render_model",
    "rendered_models",
    "rendered_precision",
    "runtime_differs",
    "write_config",
]

RUNTIME_PACKAGE = "instruct_embed_runtime"  # the runtime package's name inside a rendered model


@dataclass(frozen=True)
class ModelArtifacts:
    """What rendering copies in: the tokenizer and the encoder file (ONNX graph or TensorRT plan); for the cuda
    target, the transformers folder its PyTorch module loads; the calibrated int8 ranges (prepare measures them;
    without them the model serves float and binary only)."""

    tokenizer_json: Path
    encoder_file: Path | None = None
    hf_dir: Path | None = None
    int8_ranges: Path | None = None


def rendered_precision(repository: Path, name: str) -> str:
    """What the rendered model `name`'s encoder computes in and why, in one line ("" if its config does not say)."""
    config = read_config(repository / name / CONFIG_FILE)
    spec = json.loads(config.parameters[SPEC_PARAMETER].string_value) if SPEC_PARAMETER in config.parameters else {}
    if ENCODER_PRECISION_KEY not in spec:
        return ""
    return f"{spec[ENCODER_PRECISION_KEY]}; {spec.get(PRECISION_CHOICE_KEY, '')}"


def rendered_models(repository: Path, name: str) -> tuple[str, ...]:
    """The ensemble `name` and the steps its rendered config runs, as a server must load them (a repository
    rendered by an older version may lack the postprocess step)."""
    ensemble = read_config(repository / name / "config.pbtxt")
    return (name, *(step.model_name for step in ensemble.ensemble_scheduling.step))


def _copy_runtime(version_dir: Path) -> None:
    target = version_dir / RUNTIME_PACKAGE
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(Path(runtime.__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__"))


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def runtime_differs(model_dir: Path) -> bool:
    """Whether the rendered Python-backend model in `model_dir` runs other runtime code than this installed package:
    it was rendered by another instruct-embed version and keeps that version's code and defaults until rendered
    again. False for a model without a runtime copy (a TensorRT or ONNX Runtime encoder, a missing folder)."""
    copy = model_dir / VERSION / RUNTIME_PACKAGE
    return copy.is_dir() and _files(copy) != _files(Path(runtime.__file__).parent)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link when on the same file system (large graphs), else copy."""
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _link_tree(source: Path, target: Path) -> None:
    """Every file of `source` under `target`, hard-linked where possible (weights are gigabytes)."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(path, destination)


def _python_model(model_dir: Path, kind: str) -> Path:
    """The layout's `kind`/1/model.py, with the runtime package beside it."""
    version_dir = model_dir / VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(python_model(kind), version_dir / PYTHON_MODEL_FILE)
    _copy_runtime(version_dir)
    return version_dir


def render_postprocess(spec: ModelSpec, repository: Path, options: ServingOptions, int8_ranges: Path | None) -> Path:
    """The postprocess step's folder, written afresh, with the int8 ranges where they were calibrated."""
    folder = repository / postprocess_name(spec)
    if folder.exists():
        shutil.rmtree(folder)
    write_config(postprocess_config(spec, options, calibrated=int8_ranges is not None), folder)
    version_dir = _python_model(folder, POSTPROCESS)
    if int8_ranges is not None:
        shutil.copyfile(int8_ranges, version_dir / INT8_RANGES_FILE)
    return folder


def render_model(
    spec: ModelSpec, artifacts: ModelArtifacts, repository: Path, options: ServingOptions = ServingOptions()
) -> list[Path]:
    """Render `spec` into `repository`; returns the model folders (ensemble, preprocess, encoder, postprocess).
    Re-rendering replaces them."""
    if options.target is EncoderTarget.TENSORRT:
        raise ValueError(
            f"{spec.name}: a tensorrt_plan encoder is rendered from its built plans (instruct-embed build-engine, "
            "tensorrt_render.render_tensorrt_model), not from an ONNX graph"
        )
    ensemble_dir = repository / spec.name
    preprocess_dir = repository / preprocess_config(spec, options).name
    encoder_dir = repository / encoder_config(spec, options).name
    for folder in (ensemble_dir, preprocess_dir, encoder_dir):
        if folder.exists():
            shutil.rmtree(folder)
    post = [render_postprocess(spec, repository, options, artifacts.int8_ranges)]

    write_config(ensemble_config(spec, options, calibrated=artifacts.int8_ranges is not None), ensemble_dir)
    (ensemble_dir / VERSION).mkdir(parents=True, exist_ok=True)

    write_config(preprocess_config(spec, options), preprocess_dir)
    version_dir = _python_model(preprocess_dir, PREPROCESS)
    shutil.copyfile(artifacts.tokenizer_json, version_dir / TOKENIZER_FILE)

    write_config(encoder_config(spec, options), encoder_dir)
    if options.target is EncoderTarget.NULL:
        _python_model(encoder_dir, options.target.layout)  # no graph: the outputs cost nothing
        return [ensemble_dir, preprocess_dir, encoder_dir, *post]
    if options.target is EncoderTarget.CUDA:
        if artifacts.hf_dir is None:
            raise ValueError(f"{spec.name}: the cuda encoder loads a transformers folder; none was given")
        version_dir = _python_model(encoder_dir, options.target.layout)
        _link_tree(artifacts.hf_dir, version_dir / WEIGHTS_DIR)
        return [ensemble_dir, preprocess_dir, encoder_dir, *post]
    if artifacts.encoder_file is None:
        raise ValueError(f"{spec.name}: the {options.target} encoder runs a graph file; none was given")
    if options.target is EncoderTarget.PYTHON_ORT:
        version_dir = _python_model(encoder_dir, options.target.layout)
    else:
        version_dir = encoder_dir / VERSION
        version_dir.mkdir(parents=True, exist_ok=True)
    _link_or_copy(artifacts.encoder_file, version_dir / options.target.model_file)
    data_file = artifacts.encoder_file.with_name(artifacts.encoder_file.name + ".data")
    if data_file.exists():
        # The graph names its side file by name; keep that name beside the renamed graph.
        _link_or_copy(data_file, version_dir / data_file.name)
    return [ensemble_dir, preprocess_dir, encoder_dir, *post]
