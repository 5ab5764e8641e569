"""Writes a model's GPU repository: ensemble + int32 preprocess + a TensorRT (or ONNX Runtime TensorRT EP) encoder."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from instruct_embed.catalog import ModelSpec
from instruct_embed.export.tensorrt.profiles import BatchingPlan, Profile
from instruct_embed.export.tensorrt.signature import GraphSignature
from instruct_embed.runtime.contract import PREPROCESS
from instruct_embed.runtime.preprocess import TOKENIZER_FILE

from .configs import ServingOptions
from .layout import VERSION
from .render import (
    ModelArtifacts,
    _link_or_copy,
    _python_model,
    render_model,
    render_postprocess,
    write_config,
)
from .targets import EncoderTarget
from .tensorrt_config import (
    GpuServingOptions,
    OrtTensorRtOptions,
    cpu_step_options,
    gpu_ensemble_config,
    gpu_preprocess_config,
    ort_tensorrt_ep_config,
    tensorrt_encoder_config,
    tensorrt_warmups,
    warmup_corners,
)
from .warmup import warmup_samples, write_warmup_files


def _fresh(*folders: Path) -> None:
    for folder in folders:
        if folder.exists():
            shutil.rmtree(folder)


def render_tensorrt_model(
    spec: ModelSpec,
    tokenizer_json: Path,
    engines: Mapping[str, Path],
    repository: Path,
    plan: BatchingPlan,
    profiles: Sequence[Profile],
    signature: GraphSignature,
    options: GpuServingOptions = GpuServingOptions(),
    int8_ranges: Path | None = None,
) -> list[Path]:
    """Render `spec` for the tensorrt_plan backend; `engines` maps compute capability ('9.0') to a built plan.

    Returns the model folders (ensemble, preprocess, encoder, postprocess); re-rendering replaces them.
    """
    ensemble = gpu_ensemble_config(spec, plan, options, calibrated=int8_ranges is not None)
    preprocess = gpu_preprocess_config(spec, plan, options, signature.input_names, signature.inputs[0].dtype)
    ensemble_dir, preprocess_dir = repository / ensemble.name, repository / preprocess.name
    warmups = tensorrt_warmups(spec, tokenizer_json, plan, signature) if options.warmup else []
    filenames = {capability: path.name for capability, path in engines.items()}
    encoder = tensorrt_encoder_config(spec, plan, profiles, signature, filenames, options, warmups)
    encoder_dir = repository / encoder.name
    _fresh(ensemble_dir, preprocess_dir, encoder_dir)

    write_config(ensemble, ensemble_dir)
    (ensemble_dir / VERSION).mkdir(parents=True, exist_ok=True)
    write_config(preprocess, preprocess_dir)
    shutil.copyfile(tokenizer_json, _python_model(preprocess_dir, PREPROCESS) / TOKENIZER_FILE)

    write_config(encoder, encoder_dir)
    version_dir = encoder_dir / VERSION
    version_dir.mkdir(parents=True, exist_ok=True)
    for path in engines.values():
        _link_or_copy(path, version_dir / path.name)
    write_warmup_files(encoder_dir, warmups)
    post = render_postprocess(spec, repository, cpu_step_options(plan, options), int8_ranges)
    return [ensemble_dir, preprocess_dir, encoder_dir, post]


def render_ort_tensorrt_ep_model(
    spec: ModelSpec,
    artifacts: ModelArtifacts,
    repository: Path,
    plan: BatchingPlan,
    input_names: Sequence[str],
    options: GpuServingOptions = GpuServingOptions(),
    ep: OrtTensorRtOptions = OrtTensorRtOptions(),
) -> list[Path]:
    """Render `spec` for onnxruntime_onnx on GPU with the TensorRT EP (`artifacts.encoder_file`: the fp32 graph)."""
    serving = ServingOptions(
        target=EncoderTarget.ONNXRUNTIME,
        max_batch_size=plan.max_batch_size,
        preprocess_instances=options.preprocess_instances,
        gpu=True,
        priority_levels=options.priority_levels,
    )
    folders = render_model(spec, artifacts, repository, serving)
    ensemble_dir, preprocess_dir, encoder_dir = folders[:3]
    calibrated = artifacts.int8_ranges is not None
    write_config(gpu_ensemble_config(spec, plan, options, calibrated), ensemble_dir)
    write_config(gpu_preprocess_config(spec, plan, options, input_names, "int64"), preprocess_dir)
    warmups = (
        warmup_samples(spec, artifacts.tokenizer_json, warmup_corners(plan), input_names, "int64")
        if options.warmup
        else []
    )
    write_config(ort_tensorrt_ep_config(spec, plan, input_names, options, ep, warmups), encoder_dir)
    write_warmup_files(encoder_dir, warmups)
    return folders
