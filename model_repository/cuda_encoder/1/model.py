"""Triton Python model: the encoder step on PyTorch (the cuda target), on the GPU Triton assigns this instance."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.cpu_encoder import CpuEncoderSettings, SubBatchedEncoder
from instruct_embed_runtime.encoder_step import WEIGHTS_DIR, EncoderStep

from instruct_embed.catalog import Precision, get_spec
from instruct_embed.export.torch_session import TorchGraphSession


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        instances = sum(group.get("count", 1) for group in config.get("instance_group", [])) or 1
        settings = CpuEncoderSettings.from_parameters(parameters, instances)
        device = parameters["torch_device"]
        if device == "cuda" and args.get("model_instance_kind") == "GPU":
            device = f"cuda:{args['model_instance_device_id']}"  # KIND_GPU: the GPU Triton gave this instance
        session = TorchGraphSession(
            get_spec(parameters["catalog_model"]),
            version_dir / WEIGHTS_DIR,
            device=device,
            precision=Precision(parameters["torch_precision"]),
            trust_remote_code=parameters.get("trust_remote_code") == "1",
            memory_fraction=float(parameters.get("gpu_memory_fraction", "0")),
            cpu_threads=settings.intra_op_threads,
        )
        session.warm_up()
        encoder = SubBatchedEncoder(session, settings)
        self.step = EncoderStep(pb_utils, encoder, config["name"])

    def execute(self, requests):
        return self.step.execute(requests)
