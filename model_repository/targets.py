"""Which Triton backend runs the encoder step."""

from __future__ import annotations

from enum import StrEnum


class EncoderTarget(StrEnum):
    """Where the encoder graph runs.

    python_ort: ONNX Runtime inside a Python-backend model (the bundled CPU server has only that backend);
    onnxruntime: Triton's onnxruntime_onnx backend (the NGC container), CPU or GPU;
    tensorrt: a TensorRT plan behind the tensorrt_plan backend (GPU, built by build-engine).
    """

    PYTHON_ORT = "python_ort"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"

    @property
    def model_file(self) -> str:
        return "model.plan" if self is EncoderTarget.TENSORRT else "model.onnx"
