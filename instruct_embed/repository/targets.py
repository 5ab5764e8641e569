"""Which Triton backend runs the encoder step."""

from __future__ import annotations

from enum import StrEnum


class EncoderTarget(StrEnum):
    """Where the encoder graph runs.

    python_ort: ONNX Runtime inside a Python-backend model (the bundled CPU server has only that backend);
    onnxruntime: Triton's onnxruntime_onnx backend (the NGC container), CPU or GPU;
    tensorrt: a TensorRT plan behind the tensorrt_plan backend (GPU, built by build-engine);
    cuda: the export's PyTorch module inside a Python-backend model, on the GPU (the bundled server's GPU path; on
        CPU tensors where asked, for tests);
    null: no model, right-shaped outputs at no cost (Python backend): measures the pipeline's own ceiling.
    """

    PYTHON_ORT = "python_ort"
    ONNXRUNTIME = "onnxruntime"
    TENSORRT = "tensorrt"
    CUDA = "cuda"
    NULL = "null"

    @property
    def layout(self) -> str:
        """The folder of the Triton layout (model_repository/) the encoder's model starts from."""
        return {
            EncoderTarget.PYTHON_ORT: "cpu_encoder",
            EncoderTarget.ONNXRUNTIME: "onnxruntime_encoder",
            EncoderTarget.TENSORRT: "tensorrt_encoder",
            EncoderTarget.CUDA: "cuda_encoder",
            EncoderTarget.NULL: "null_encoder",
        }[self]

    @property
    def model_file(self) -> str:
        return "model.plan" if self is EncoderTarget.TENSORRT else "model.onnx"


class TorchDevice(StrEnum):
    """Where the cuda target's PyTorch module runs: the GPU, or CPU tensors (the same code, for tests and for
    checking a rendered repository on a machine without a GPU)."""

    CUDA = "cuda"
    CPU = "cpu"
