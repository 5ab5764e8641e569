"""What runs the exported graph on CPU: ONNX Runtime in fp32, OpenVINO with bf16 matrix math, or ONNX Runtime on the
statically quantised int8 graph.

All answer `run(feed) -> {output: array}`. bf16 exists because ONNX Runtime's CPU provider has no bf16 kernels for
x86, while CPUs with AMX or AVX512-BF16 units do bf16 matrix products several times faster than fp32 ones; OpenVINO's
CPU plugin uses them, keeping accumulation, softmax and normalisation in fp32 (measured on e5-small: cosine >= 0.9999
against fp32, 2x the throughput with AVX512-BF16, about 4x with AMX: benchmarks/README.md). int8 runs a graph whose
scales were calibrated once (export/static_int8.py), so a text's vector does not depend on its batch neighbours.

`auto` is a request, not a precision: prepare resolves it (prepare.resolve_cpu_precision) to bf16 where the CPU has
bf16 units and the model's bf16 validation passes, to fp32 elsewhere, and renders the choice with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

FP32 = "fp32"
BF16 = "bf16"
INT8 = "int8"
AUTO = "auto"
CPU_PRECISIONS = (FP32, BF16, INT8)  # what an encoder computes in
REQUESTABLE_CPU_PRECISIONS = (AUTO, *CPU_PRECISIONS)  # what a user may ask for
# The CPU plugin lists this capability where the cores multiply bf16 natively (AMX-BF16 or AVX512-BF16).
BF16_CAPABILITY = "BF16"


class GraphSession(Protocol):
    input_names: list[str]
    output_names: list[str]
    per_token_outputs: set[str]  # outputs whose axis 1 is the inputs' sequence axis (BGE-M3's sparse weights)

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class CpuPrecisionError(ValueError):
    """The requested CPU precision cannot run here, or is not one we offer."""


def check_cpu_precision(precision: str, requestable: bool = False) -> None:
    offered = REQUESTABLE_CPU_PRECISIONS if requestable else CPU_PRECISIONS
    if precision not in offered:
        raise CpuPrecisionError(f"CPU precision {precision!r} is not offered; choose one of {', '.join(offered)}")


def cpu_runtime(precision: str) -> str:
    """Which library computes `precision` on the CPU, for what the server says it runs."""
    return "OpenVINO" if precision == BF16 else "ONNX Runtime"


def open_graph_session(onnx_path: str, precision: str, threads: int, allow_spinning: bool) -> GraphSession:
    """A session for `onnx_path` computing in `precision` on `threads` threads (0: all cores). For int8,
    `onnx_path` is the quantised graph (its QDQ nodes carry the scales)."""
    check_cpu_precision(precision)
    if precision == BF16:
        return OpenVinoSession(onnx_path, threads)
    return OrtGraphSession(onnx_path, threads, allow_spinning)


class OrtGraphSession:
    def __init__(self, onnx_path: str, threads: int, allow_spinning: bool) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        first = self.session.get_inputs()[0].shape
        sequence_axis = first[1] if len(first) > 1 else None
        self.per_token_outputs = {
            o.name
            for o in self.session.get_outputs()
            if isinstance(sequence_axis, str) and len(o.shape) > 1 and o.shape[1] == sequence_axis
        }

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {name: feed[name] for name in self.input_names})
        return dict(zip(self.output_names, values, strict=True))


def cpu_has_bf16() -> bool:
    import openvino as ov

    return BF16_CAPABILITY in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def require_bf16(capabilities: Sequence[str]) -> None:
    if BF16_CAPABILITY not in capabilities:
        raise CpuPrecisionError(
            "CPU precision bf16 needs cores with bf16 matrix units (AMX-BF16 or AVX512-BF16, e.g. Intel Xeon 4th "
            f"generation and later); this CPU offers {', '.join(capabilities) or 'none'}: serve with fp32"
        )


class OpenVinoSession:
    """The fp32 graph compiled by OpenVINO's CPU plugin with bf16 inference precision (the server's bf16 encoder).

    Threads are not pinned to cores: Triton runs one process per encoder instance, and pinned threads of two
    processes would all land on the first cores (measured: half the throughput of unpinned ones).
    """

    def __init__(self, onnx_path: str, threads: int, inference_precision: str = BF16) -> None:
        """`inference_precision` "f32" compiles it in fp32 instead (benchmarks/cpu_runtimes.py compares runtimes)."""
        import openvino as ov

        core = ov.Core()
        if inference_precision == BF16:
            require_bf16(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        config: dict[str, object] = {
            "INFERENCE_PRECISION_HINT": inference_precision,
            "PERFORMANCE_HINT": "LATENCY",  # one stream: the encoder calls run() from one thread
            "NUM_STREAMS": 1,
            "ENABLE_CPU_PINNING": False,
        }
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.model = core.compile_model(onnx_path, "CPU", config)
        self.request = self.model.create_infer_request()
        self.input_names = [i.get_any_name() for i in self.model.inputs]
        self.output_names = [o.get_any_name() for o in self.model.outputs]
        self.per_token_outputs = {
            o.get_any_name()
            for o in self.model.outputs
            if o.get_partial_shape().rank.get_length() > 1 and o.get_partial_shape()[1].is_dynamic
        }

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.request.infer({name: feed[name] for name in self.input_names})
        # The request reuses its output buffers on the next run: copy before handing them out.
        return {o.get_any_name(): np.array(results[o], copy=True) for o in self.model.outputs}
