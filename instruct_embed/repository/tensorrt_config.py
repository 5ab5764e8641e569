"""Triton configs for GPU encoders, rendered from the spec, the batching plan and the graph's signature.

- tensorrt_plan: int32 ids (as the engine graph takes them, see instruct_embed/export/tensorrt/engine_graph.py),
  the plan's profiles in every instance group, one plan file per GPU architecture (cc_model_filenames), dynamic batching
  at the tuned batch sizes, a bounded queue, and warmup with real token ids at every profile's corners.
- onnxruntime_onnx on GPU with ONNX Runtime's TensorRT execution provider, as the build-free alternative.

The preprocess step and the ensemble are the CPU configs with the ids retyped to int32 and the tokenizer's
max_length set to the engine's longest sequence, so nothing reaches the engine that its profiles reject.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import ModelSpec
from instruct_embed.catalog.families import traits
from instruct_embed.export.tensorrt.pipeline import DEFAULT_INSTANCES_PER_GPU
from instruct_embed.export.tensorrt.profiles import BatchingPlan, Profile, profiles_for_plan
from instruct_embed.export.tensorrt.signature import GraphSignature
from instruct_embed.runtime.preprocess import SPEC_PARAMETER

from .configs import ServingOptions, encoder_config, encoder_name, ensemble_config, preprocess_config
from .targets import EncoderTarget
from .warmup import TRITON_DTYPES, WarmupSample, add_warmups, warmup_samples

ENGINE_ID_DTYPE = "int32"
SMALL_WARMUP_LENGTH = 16


@dataclass(frozen=True)
class GpuServingOptions:
    """How a GPU encoder is served; each default says what it protects."""

    # Two, as on CPU: with priorities and a queue bound on, Triton's batcher wakes for a new request only while an
    # instance is free, so behind one busy instance the last requests of a burst can wait out its 0.5 s idle sleep
    # (benchmarks/README.md, "Stalls"). The instances share the engine's weights; each adds its contexts'
    # activations (docs/gpu.md), so a small card may need 1 (`build-engine --instances-per-gpu 1`).
    instances_per_gpu: int = DEFAULT_INSTANCES_PER_GPU
    gpus: tuple[int, ...] = ()  # empty: every GPU Triton sees
    max_queue_delay_us: int = 1000  # wait at most 1 ms for a fuller batch
    queue_timeout_us: int = 2_000_000  # reject what waited 2 s: the caller has likely given up
    max_queue_size: int | None = None  # None: 8 full batches; beyond that reject at once (back-pressure)
    preprocess_instances: int = 4  # tokenisation is CPU-bound; one Python process cannot keep a GPU busy
    priority_levels: int = 2  # as on CPU: queries (priority 1) overtake queued documents; 0 disables
    warmup: bool = True


def _spec_parameter(config: mc.ModelConfig, **changes: object) -> None:
    spec = json.loads(config.parameters[SPEC_PARAMETER].string_value)
    spec.update(changes)
    config.parameters[SPEC_PARAMETER].string_value = json.dumps(spec, sort_keys=True)


def cpu_step_options(plan: BatchingPlan, options: GpuServingOptions) -> ServingOptions:
    """The serving options of the Python-backend steps (preprocess, postprocess) beside a GPU encoder."""
    return ServingOptions(
        max_batch_size=plan.max_batch_size,
        preprocess_instances=options.preprocess_instances,
        priority_levels=options.priority_levels,
    )


def gpu_preprocess_config(
    spec: ModelSpec, plan: BatchingPlan, options: GpuServingOptions, input_names: Sequence[str], id_dtype: str
) -> mc.ModelConfig:
    """The CPU preprocess config emitting `id_dtype` ids, truncating at the plan's longest sequence and padding
    each request to its length bucket's bound (one shape per bucket: Triton batches only equal shapes)."""
    config = preprocess_config(spec, cpu_step_options(plan, options))
    for tensor in config.output:
        if tensor.name in input_names:
            tensor.data_type = TRITON_DTYPES[id_dtype]
    _spec_parameter(
        config, max_length=plan.max_sequence, encoder_input_dtype=id_dtype, sequence_buckets=list(plan.buckets)
    )
    return config


def gpu_ensemble_config(
    spec: ModelSpec, plan: BatchingPlan, options: GpuServingOptions, calibrated: bool = False
) -> mc.ModelConfig:
    config = ensemble_config(spec, cpu_step_options(plan, options), calibrated)
    _spec_parameter(config, max_length=plan.max_sequence)
    return config


def warmup_corners(plan: BatchingPlan) -> list[tuple[str, int, int]]:
    """(name, batch size, length) at both ends of every profile: one short single text, one full batch."""
    corners = []
    for index, (low, high) in enumerate(plan.sequence_ranges):
        corners.append((f"profile{index}_short", 1, max(low, min(high, SMALL_WARMUP_LENGTH))))
        corners.append((f"profile{index}_full", plan.max_batch_size, high))
    return corners


def _io(config: mc.ModelConfig, signature: GraphSignature) -> None:
    for tensor in signature.inputs:
        config.input.add(name=tensor.name, data_type=TRITON_DTYPES[tensor.dtype], dims=list(tensor.dims))
    for tensor in signature.outputs:
        config.output.add(name=tensor.name, data_type=TRITON_DTYPES[tensor.dtype], dims=list(tensor.dims))


def _batching(config: mc.ModelConfig, plan: BatchingPlan, options: GpuServingOptions) -> None:
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(plan.preferred_batch_sizes)
    batching.max_queue_delay_microseconds = options.max_queue_delay_us
    policy = batching.default_queue_policy
    policy.timeout_action = mc.ModelQueuePolicy.REJECT
    policy.default_timeout_microseconds = options.queue_timeout_us
    policy.allow_timeout_override = True
    policy.max_queue_size = options.max_queue_size or 8 * plan.max_batch_size
    if options.priority_levels > 1:
        batching.priority_levels = options.priority_levels
        batching.default_priority_level = options.priority_levels


def tensorrt_encoder_config(
    spec: ModelSpec,
    plan: BatchingPlan,
    profiles: Sequence[Profile],
    signature: GraphSignature,
    engines: Mapping[str, str],
    options: GpuServingOptions = GpuServingOptions(),
    warmups: Sequence[WarmupSample] = (),
) -> mc.ModelConfig:
    """The tensorrt_plan encoder. `engines` maps compute capability ('9.0') to a plan file in the version folder.

    Every instance group may use every profile: Triton's TensorRT backend keeps a context per profile and runs
    each batch on the one whose ranges fit, so pinning groups to buckets would only strand requests.
    """
    if not engines:
        raise ValueError(f"{spec.name}: no engine to serve; build one with `instruct-embed build-engine`")
    if [t.name for t in signature.inputs] != list(profiles[0].shapes):
        raise ValueError(f"profile inputs {list(profiles[0].shapes)} differ from the graph's {signature.input_names}")
    config = mc.ModelConfig(name=encoder_name(spec), platform="tensorrt_plan", max_batch_size=plan.max_batch_size)
    _io(config, signature)
    group = config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=options.instances_per_gpu)
    group.gpus.extend(options.gpus)
    group.profile.extend(str(i) for i in range(len(profiles)))
    for capability, filename in sorted(engines.items()):
        config.cc_model_filenames[capability] = filename
    _batching(config, plan, options)
    add_warmups(config, warmups)
    return config


def tensorrt_warmups(
    spec: ModelSpec, tokenizer_json: Path, plan: BatchingPlan, signature: GraphSignature
) -> list[WarmupSample]:
    dtype = signature.inputs[0].dtype
    return warmup_samples(spec, tokenizer_json, warmup_corners(plan), signature.input_names, dtype)


@dataclass(frozen=True)
class OrtTensorRtOptions:
    """ONNX Runtime's TensorRT EP inside the onnxruntime backend: it builds engines at load (cached on disk)."""

    precision_mode: str | None = None  # FP16 or FP32; None: FP16, or FP32 for families that overflow in fp16
    workspace_bytes: int = 4 * 1024**3
    engine_cache_path: str = "/tmp/instruct-embed-ort-trt-cache"  # a volume, so restarts skip the build


def ort_tensorrt_ep_config(
    spec: ModelSpec,
    plan: BatchingPlan,
    input_names: Sequence[str],
    options: GpuServingOptions = GpuServingOptions(),
    ep: OrtTensorRtOptions = OrtTensorRtOptions(),
    warmups: Sequence[WarmupSample] = (),
) -> mc.ModelConfig:
    """The onnxruntime_onnx encoder on GPU (fp32 graph, int64 ids) with the TensorRT execution provider.

    The EP takes one profile, so it spans the whole plan. Decoder families refuse FP16 (they overflow); their
    bf16 path is the tensorrt_plan target.
    """
    overflows = traits(spec.family).fp16_overflows
    precision = ep.precision_mode or ("FP32" if overflows else "FP16")
    if precision not in ("FP16", "FP32"):
        raise ValueError(f"precision_mode must be FP16 or FP32, got {precision!r}")
    if precision == "FP16" and overflows:
        raise ValueError(f"{spec.name} overflows in fp16; use precision_mode FP32 or the tensorrt_plan target (bf16)")
    serving = ServingOptions(
        target=EncoderTarget.ONNXRUNTIME,
        max_batch_size=plan.max_batch_size,
        max_queue_delay_us=options.max_queue_delay_us,
        encoder_instances=options.instances_per_gpu,
        gpu=True,
        priority_levels=options.priority_levels,
    )
    config = encoder_config(spec, serving)
    config.instance_group[0].gpus.extend(options.gpus)
    (whole,) = profiles_for_plan(replace(plan, buckets=(plan.max_sequence,)), input_names)
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
    parameters = {
        "precision_mode": precision,
        "max_workspace_size_bytes": str(ep.workspace_bytes),
        "trt_engine_cache_enable": "1",
        "trt_engine_cache_path": f"{ep.engine_cache_path}/{spec.name}",
        "trt_profile_min_shapes": ",".join(f"{n}:{s.min[0]}x{s.min[1]}" for n, s in whole.shapes.items()),
        "trt_profile_opt_shapes": ",".join(f"{n}:{s.opt[0]}x{s.opt[1]}" for n, s in whole.shapes.items()),
        "trt_profile_max_shapes": ",".join(f"{n}:{s.max[0]}x{s.max[1]}" for n, s in whole.shapes.items()),
    }
    if precision == "FP16":
        parameters["trt_layer_norm_fp32_fallback"] = "1"  # the same fp32 island the tensorrt_plan graph keeps
    for key, value in parameters.items():
        accelerator.parameters[key] = value
    config.dynamic_batching.Clear()
    _batching(config, plan, options)
    add_warmups(config, warmups)
    return config
