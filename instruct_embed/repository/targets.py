"""Which Triton backend runs the encoder step."""

from __future__ import annotations

from enum import StrEnum


class EncoderTarget(StrEnum):
    """Where the encoder graph runs.

    python_ort: ONNX Runtime inside a Python-backend model (the bundled CPU server has only that backend);
    onnxruntime: Triton's onnxruntime_onnx backend (the NGC container), CPU or GPU;
    tensorrt: a TensorRT plan behind the tensorrt_plan backend (GPU, built by build-engine);
    null: no model, right-shaped outputs at no cost (Python backend): measures the pipeline's own ceiling.
    """

    PYTHON_ORT = "python_ort"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"
    NULL = "null"

    @property
    def layout(self) -> str:
        """The folder of the Triton layout (model_repository/) the encoder's model starts from."""
        return {
            EncoderTarget.PYTHON_ORT: "cpu_encoder",
            EncoderTarget.ONNXRUNTIME: "onnxruntime_encoder",
            EncoderTarget.TENSORRT: "tensorrt_encoder",
            EncoderTarget.NULL: "null_encoder",
        }[self]

    @property
    def model_file(self) -> str:
        return "model.plan" if self is EncoderTarget.TENSORRT else "model.onnx"
