"""Triton Python model: the encoder step on CPU (ONNX Runtime fp32 or OpenVINO bf16) in the Python backend."""

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.cpu_encoder import CpuEncoder
from instruct_embed_runtime.encoder_step import EncoderArgs, EncoderStep

ONNX_FILE = "model.onnx"


class TritonPythonModel:
    def initialize(self, args):
        model = EncoderArgs.parse(args)
        encoder = CpuEncoder(str(model.version_dir / ONNX_FILE), model.settings)
        self.step = EncoderStep(pb_utils, encoder, model.name)

    def execute(self, requests):
        return self.step.execute(requests)
