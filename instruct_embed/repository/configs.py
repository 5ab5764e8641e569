"""Triton model configs built as protobuf messages from a ModelSpec (never written by hand).

Names on the public contract (TEXT, ROLE, TASK, INSTRUCTION, INSTRUCTION_KIND, TRUNCATE, DIMENSIONS, CHUNK,
CHUNK_OVERLAP -> EMBEDDING and its storage types, TOKEN_COUNT, CHUNK_*) are upper case; tensors between the steps
are named after what they carry (input_ids, attention_mask, embedding, dimensions, output_row).

An ensemble runs preprocess -> encoder -> postprocess (the DIMENSIONS cut, CHUNK mean, the storage types). Each
config starts from its kind's folder of the Triton layout (model_repository/, layout.py), which holds what every
model of that kind shares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import ModelSpec, Precision
from instruct_embed.catalog.tensors import TOKEN_IDS, encoder_outputs
from instruct_embed.runtime.contract import (
    BINARY,
    CALIBRATED_TYPES,
    CHUNK_CHARS,
    CHUNK_OUTPUTS,
    CHUNK_TOKENS,
    DENSE,
    EMBEDDING_OUTPUTS,
    EMBEDDING_TYPES,
    ENCODER,
    ENCODER_PRECISION_KEY,
    FLOAT,
    INPUT_IDS,
    INT8,
    OPTIONAL_INT_INPUTS,
    OPTIONAL_TEXT_INPUTS,
    OUTPUT_ROW,
    POSTPROCESS,
    PRECISION_CHOICE_KEY,
    PREPROCESS,
    SERVED_TYPES_KEY,
    SIZES,
    SPEC_PARAMETER,
    TEXT,
    TOKEN_COUNT,
    UBINARY,
    UINT8,
    step_name,
)
from instruct_embed.runtime.cpu_encoder import shared_threads
from instruct_embed.runtime.graph_sessions import AUTO, FP32, CpuPrecisionError, check_cpu_precision, cpu_runtime
from instruct_embed.runtime.null_encoder import OUTPUTS_PARAMETER, NullOutput, outputs_to_parameter

from . import layout
from .targets import EncoderTarget, TorchDevice

FULL_EMBEDDING = "full_embedding"  # the encoder's vector in the ensemble, before the postprocess step
# Each storage type's Triton data type (binary's sign bits are packed 8 per byte).
_TYPE_DTYPES = {
    FLOAT: mc.TYPE_FP32,
    INT8: mc.TYPE_INT8,
    UINT8: mc.TYPE_UINT8,
    BINARY: mc.TYPE_INT8,
    UBINARY: mc.TYPE_UINT8,
}


def served_types(calibrated: bool) -> tuple[str, ...]:
    """The storage types a model serves: int8 / uint8 only with its calibrated ranges."""
    return tuple(t for t in EMBEDDING_TYPES if calibrated or t not in CALIBRATED_TYPES)


@dataclass(frozen=True)
class ServingOptions:
    """How one model is served. Defaults suit the 2-core CPU server; GPU deployments raise them."""

    target: EncoderTarget = EncoderTarget.PYTHON_ORT
    max_batch_size: int = 64
    max_queue_delay_us: int = 2000  # how long the encoder's batcher waits for company
    preprocess_instances: int = 1
    # Two, not one: with priorities or queue bounds on, Triton's batcher wakes for a new request only while an
    # instance is free, so with a single busy instance the last requests of a burst could wait out the batcher's
    # 500 ms idle sleep (16-25 bursts of 40 with one, none with two:
    # benchmarks/README.md, "Stalls").
    encoder_instances: int = 2
    gpu: bool = False
    # The CPU encoder's threads per instance (ONNX Runtime's or OpenVINO's); 0: the instances share the cores.
    ort_intra_op_threads: int = 0
    # python_ort: "fp32" runs the graph on ONNX Runtime; "bf16" runs the same graph on OpenVINO with the CPU's bf16
    # matrix units (AMX / AVX512-BF16; refused where the CPU has none); "int8" runs the statically quantised graph;
    # each validated against the fp32 reference. "auto", a request: prepare resolves it (resolve_cpu_precision) to
    # bf16 where the CPU has bf16 units and bf16 passes validation, else fp32; rendered unresolved, it is fp32.
    cpu_precision: str = AUTO
    # Why the encoder computes in its precision (prepare's resolution of "auto", or "pinned"), carried to clients.
    precision_choice: str = ""
    token_budget: int = 8192  # padded tokens per encoder run (python_ort): bounds one run, sorts out padding
    # What one more ONNX Runtime run costs, in tokens (python_ort): the encoder cuts a batch into sub-batches where
    # padding would cost more than that (benchmarks/README.md: +25 % on 1-text requests); 0: fill up to the budget.
    run_cost_tokens: int = 16
    priority_levels: int = 2  # 1 = queries (the SDK sends them so), 2 = everything else; 0 disables priorities
    tokenizer_threads: int = 1  # per preprocess instance, so instances do not fight over the cores
    # ONNX Runtime's intra-op threads busy-wait between runs when on: faster alone, but they steal the cores the
    # preprocess step and the clients need on a small machine (measure both: benchmarks/side_by_side.py).
    ort_allow_spinning: bool = False
    # The ensemble answers a request identical to an earlier one from Triton's response cache (repeated queries);
    # the server must be started with a cache (`--cache-config local,size=N`: ServerOptions.response_cache_bytes).
    response_cache: bool = False
    # Overload control on the encoder's queue (where requests wait; the preprocess step has none, see
    # preprocess_config): past these, a request is refused at once with UNAVAILABLE (the SDK retries with backoff)
    # instead of waiting minutes behind a spike.
    max_queue_size: int = 64  # requests waiting per priority level (0: unbounded)
    queue_timeout_us: int = 30_000_000  # a request still queued after this is refused (0: never)
    allow_timeout_override: bool = True  # a request's own `timeout` parameter may set its wait instead
    # The cuda target: where its PyTorch module runs (cpu: the same code on CPU tensors), in which precision (None:
    # the family's engine precision, fp16 for BERT / XLM-R, bf16 for the decoders), and the share of the GPU's
    # memory each instance's allocator may hold (0: no cap).
    torch_device: TorchDevice = TorchDevice.CUDA
    torch_precision: Precision | None = None
    gpu_memory_fraction: float = 0.0

    def __post_init__(self) -> None:
        check_cpu_precision(self.cpu_precision, requestable=True)
        if self.cpu_precision not in (FP32, AUTO) and self.target is not EncoderTarget.PYTHON_ORT:
            raise CpuPrecisionError(
                f"cpu_precision {self.cpu_precision} applies to the {EncoderTarget.PYTHON_ORT} target (the "
                f"Python-backend CPU encoder), not to {self.target}"
            )
        if not 0.0 <= self.gpu_memory_fraction <= 1.0:
            raise ValueError(f"gpu_memory_fraction {self.gpu_memory_fraction} must be between 0 (no cap) and 1")

    @property
    def served_cpu_precision(self) -> str:
        """What the python_ort encoder computes in: the resolved precision (an unresolved "auto" is fp32)."""
        return FP32 if self.cpu_precision == AUTO else self.cpu_precision

    def torch_precision_of(self, spec: ModelSpec) -> Precision:
        """The cuda target's precision for `spec`: the pinned one, else the family's engine precision."""
        return self.torch_precision or spec.default_precision

    @property
    def encoder_on_gpu(self) -> bool:
        """Whether the encoder's instances are GPU ones (KIND_GPU): Triton then gives each a GPU."""
        return self.gpu or (self.target is EncoderTarget.CUDA and self.torch_device is TorchDevice.CUDA)


def preprocess_name(spec: ModelSpec) -> str:
    return step_name(spec.name, PREPROCESS)


def encoder_name(spec: ModelSpec) -> str:
    return step_name(spec.name, ENCODER)


def postprocess_name(spec: ModelSpec) -> str:
    return step_name(spec.name, POSTPROCESS)


def step_names(spec: ModelSpec) -> tuple[str, ...]:
    """The Triton models behind `spec`'s ensemble, in the order a request passes them."""
    return (preprocess_name(spec), encoder_name(spec), postprocess_name(spec))


def triton_models(spec: ModelSpec) -> tuple[str, ...]:
    """Everything a server loads to serve `spec`: the ensemble and its steps."""
    return (spec.name, *step_names(spec))


def _add_tensor(collection, name: str, data_type: int, dims: list[int], optional: bool = False) -> None:
    tensor = collection.add()
    tensor.name = name
    tensor.data_type = data_type
    tensor.dims.extend(dims)
    if optional:
        tensor.optional = True


def _start(kind: str, name: str, options: ServingOptions) -> mc.ModelConfig:
    config = layout.base_config(kind)
    config.name = name
    config.max_batch_size = options.max_batch_size
    return config


def _spec_parameter(config: mc.ModelConfig, spec: ModelSpec, extra: dict | None = None) -> None:
    values = {**spec.runtime_config(), **(extra or {})}
    config.parameters[SPEC_PARAMETER].string_value = json.dumps(values, sort_keys=True)


def _request_inputs(config: mc.ModelConfig) -> None:
    _add_tensor(config.input, TEXT, mc.TYPE_STRING, [1])
    for name in OPTIONAL_TEXT_INPUTS:
        _add_tensor(config.input, name, mc.TYPE_STRING, [1], optional=True)
    # DIMENSIONS on every model, so that each refuses a size it was not trained for by name (preprocess checks it).
    for name in OPTIONAL_INT_INPUTS:
        _add_tensor(config.input, name, mc.TYPE_INT32, [1], optional=True)


def _chunk_outputs(collection) -> None:
    for name in CHUNK_OUTPUTS:
        _add_tensor(collection, name, mc.TYPE_INT32, [2] if name in (CHUNK_TOKENS, CHUNK_CHARS) else [1])


def preprocess_config(spec: ModelSpec, options: ServingOptions) -> mc.ModelConfig:
    config = _start(layout.PREPROCESS, preprocess_name(spec), options)
    _request_inputs(config)
    for name in spec.encoder_inputs:
        _add_tensor(config.output, name, mc.TYPE_INT64, [-1])
    _add_tensor(config.output, TOKEN_COUNT, mc.TYPE_INT32, [1])
    _add_tensor(config.output, SIZES, mc.TYPE_INT32, [1])
    _add_tensor(config.output, OUTPUT_ROW, mc.TYPE_INT32, [1])
    _chunk_outputs(config.output)
    config.instance_group.add(count=options.preprocess_instances, kind=mc.ModelInstanceGroup.KIND_CPU)
    # Its batcher is the layout's plain one: model_repository/preprocess/config.pbtxt says why.
    config.parameters["tokenizer_threads"].string_value = str(options.tokenizer_threads)
    _spec_parameter(config, spec)
    return config


def _priorities(config: mc.ModelConfig, options: ServingOptions) -> None:
    """Query requests (priority 1) jump the queue of bulk documents (the default, last level)."""
    if options.priority_levels > 1:
        config.dynamic_batching.priority_levels = options.priority_levels
        config.dynamic_batching.default_priority_level = options.priority_levels


def _queue_policy(config: mc.ModelConfig, options: ServingOptions) -> None:
    """A bounded queue with a bounded wait; both refusals reach the client as UNAVAILABLE."""
    policy = config.dynamic_batching.default_queue_policy  # every priority level's, unless one sets its own
    policy.max_queue_size = options.max_queue_size
    policy.timeout_action = mc.ModelQueuePolicy.REJECT
    policy.default_timeout_microseconds = options.queue_timeout_us
    policy.allow_timeout_override = options.allow_timeout_override


def encoder_config(spec: ModelSpec, options: ServingOptions) -> mc.ModelConfig:
    config = _start(options.target.layout, encoder_name(spec), options)
    if options.target is EncoderTarget.PYTHON_ORT:
        config.parameters["ort_intra_op_threads"].string_value = str(options.ort_intra_op_threads)
        config.parameters["token_budget"].string_value = str(options.token_budget)
        config.parameters["max_rows_per_run"].string_value = str(options.max_batch_size)
        config.parameters["ort_allow_spinning"].string_value = "1" if options.ort_allow_spinning else "0"
        config.parameters["run_cost_tokens"].string_value = str(options.run_cost_tokens)
        config.parameters["cpu_precision"].string_value = options.served_cpu_precision
    elif options.target is EncoderTarget.CUDA:
        config.parameters["catalog_model"].string_value = spec.name  # the model card's module, from the catalog
        config.parameters["torch_device"].string_value = options.torch_device.value
        config.parameters["torch_precision"].string_value = options.torch_precision_of(spec).value
        config.parameters["trust_remote_code"].string_value = "1" if spec.trust_remote_code else "0"
        config.parameters["gpu_memory_fraction"].string_value = str(options.gpu_memory_fraction)
        config.parameters["token_budget"].string_value = str(options.token_budget)
        config.parameters["max_rows_per_run"].string_value = str(options.max_batch_size)
        config.parameters["run_cost_tokens"].string_value = str(options.run_cost_tokens)
        config.parameters["ort_intra_op_threads"].string_value = str(options.ort_intra_op_threads)
    elif options.target is EncoderTarget.NULL:
        null_outputs = [NullOutput(o.name, o.dims, o.per_token) for o in encoder_outputs(spec)]
        config.parameters[OUTPUTS_PARAMETER].string_value = outputs_to_parameter(null_outputs)
    elif options.target is EncoderTarget.ONNXRUNTIME:
        config.default_model_filename = EncoderTarget.ONNXRUNTIME.model_file
        if not options.gpu:
            # The backend gives every instance ONNX Runtime's default pool, one thread per core: two instances
            # would run twice as many threads as cores. Share them as the python_ort encoder does, counted where
            # the repository is rendered (compose's export-cpu renders it on the host that serves it).
            threads = shared_threads(options.ort_intra_op_threads, options.encoder_instances)
            config.parameters["intra_op_thread_count"].string_value = str(threads)
    else:
        config.default_model_filename = EncoderTarget.TENSORRT.model_file
    for name in spec.encoder_inputs:
        _add_tensor(config.input, name, mc.TYPE_INT64, [-1])
        if options.target in (EncoderTarget.PYTHON_ORT, EncoderTarget.CUDA, EncoderTarget.NULL):
            # Requests of different lengths may share one execute(): the model re-batches their rows by length.
            config.input[-1].allow_ragged_batch = True
    for output in encoder_outputs(spec):
        _add_tensor(config.output, output.name, mc.TYPE_FP32, list(output.dims))
    kind = mc.ModelInstanceGroup.KIND_GPU if options.encoder_on_gpu else mc.ModelInstanceGroup.KIND_CPU
    config.instance_group.add(count=options.encoder_instances, kind=kind)
    config.dynamic_batching.max_queue_delay_microseconds = options.max_queue_delay_us
    _priorities(config, options)
    _queue_policy(config, options)
    return config


def _storage_outputs(collection, types: tuple[str, ...]) -> None:
    for kind in types:  # a request's width is the size it asked for, a binary one an eighth of it
        _add_tensor(collection, EMBEDDING_OUTPUTS[kind], _TYPE_DTYPES[kind], [-1])


def postprocess_config(spec: ModelSpec, options: ServingOptions, calibrated: bool = False) -> mc.ModelConfig:
    """The encoder's vector, the row's size and its output row in; EMBEDDING and its storage types out."""
    config = _start(layout.POSTPROCESS, postprocess_name(spec), options)
    _add_tensor(config.input, DENSE, mc.TYPE_FP32, [spec.dim])
    _add_tensor(config.input, SIZES, mc.TYPE_INT32, [1])
    _add_tensor(config.input, OUTPUT_ROW, mc.TYPE_INT32, [1])
    _storage_outputs(config.output, served_types(calibrated))
    config.instance_group.add(count=options.preprocess_instances, kind=mc.ModelInstanceGroup.KIND_CPU)
    return config


def encoder_precision(spec: ModelSpec, options: ServingOptions) -> dict[str, str]:
    """What the encoder computes in, and why, for the ensemble's spec parameter (python_ort and cuda targets)."""
    if options.target is EncoderTarget.PYTHON_ORT:
        precision = f"{options.served_cpu_precision} ({cpu_runtime(options.served_cpu_precision)})"
        unresolved = "auto, unresolved (rendered without prepare): fp32"
        choice = options.precision_choice or (unresolved if options.cpu_precision == AUTO else "pinned")
    elif options.target is EncoderTarget.CUDA:
        precision = f"{options.torch_precision_of(spec).value} (PyTorch on {options.torch_device.value})"
        choice = "pinned: torch_precision" if options.torch_precision else "the family's engine precision"
    else:
        return {}
    return {ENCODER_PRECISION_KEY: precision, PRECISION_CHOICE_KEY: choice}


def ensemble_config(spec: ModelSpec, options: ServingOptions, calibrated: bool = False) -> mc.ModelConfig:
    config = _start(layout.ENSEMBLE, spec.name, options)
    _request_inputs(config)
    outputs = encoder_outputs(spec)
    types = served_types(calibrated)
    _storage_outputs(config.output, types)
    for output in outputs:
        if output.name != DENSE:
            _add_tensor(config.output, output.public, mc.TYPE_FP32, list(output.dims))
    _add_tensor(config.output, TOKEN_COUNT, mc.TYPE_INT32, [1])
    _chunk_outputs(config.output)
    # Per-token outputs (BGE-M3's sparse weights) only mean something next to the ids they weigh: the
    # ensemble then also returns input_ids, under the public name TOKEN_IDS.
    per_token = any(o.per_token for o in outputs)
    if per_token:
        _add_tensor(config.output, TOKEN_IDS, mc.TYPE_INT64, [-1])
    _spec_parameter(config, spec, {SERVED_TYPES_KEY: list(types), **encoder_precision(spec, options)})
    if options.response_cache:
        config.response_cache.enable = True
    steps = config.ensemble_scheduling.step
    pre = steps.add(model_name=preprocess_name(spec), model_version=-1)
    for name in (TEXT, *OPTIONAL_TEXT_INPUTS, *OPTIONAL_INT_INPUTS):
        pre.input_map[name] = name
    between = {name: name for name in spec.encoder_inputs}
    if per_token:
        between[INPUT_IDS] = TOKEN_IDS
    for name, tensor in between.items():
        pre.output_map[name] = tensor
    for name in (TOKEN_COUNT, *CHUNK_OUTPUTS, SIZES, OUTPUT_ROW):
        pre.output_map[name] = name
    enc = steps.add(model_name=encoder_name(spec), model_version=-1)
    for name, tensor in between.items():
        enc.input_map[name] = tensor
    for output in outputs:
        enc.output_map[output.name] = FULL_EMBEDDING if output.name == DENSE else output.public
    post = steps.add(model_name=postprocess_name(spec), model_version=-1)
    post.input_map[DENSE] = FULL_EMBEDDING
    post.input_map[SIZES] = SIZES
    post.input_map[OUTPUT_ROW] = OUTPUT_ROW
    for kind in types:
        post.output_map[EMBEDDING_OUTPUTS[kind]] = EMBEDDING_OUTPUTS[kind]
    return config
