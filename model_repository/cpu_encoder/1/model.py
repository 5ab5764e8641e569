"""Triton Python model: the encoder step on CPU (ONNX Runtime fp32 or OpenVINO bf16) in the Python backend."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings
from instruct_embed_runtime.encoder_step import EncoderStep

ONNX_FILE = "model.onnx"


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        instances = sum(group.get("count", 1) for group in config.get("instance_group", [])) or 1
        settings = CpuEncoderSettings.from_parameters(parameters, instances)
        self.step = EncoderStep(pb_utils, CpuEncoder(str(version_dir / ONNX_FILE), settings), config["name"])

    def execute(self, requests):
        return self.step.execute(requests)
