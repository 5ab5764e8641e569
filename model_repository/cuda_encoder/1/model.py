"""Triton Python model: the encoder step on PyTorch (the cuda target), on the GPU Triton assigns this instance."""

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.cpu_encoder import SubBatchedEncoder
from instruct_embed_runtime.encoder_step import WEIGHTS_DIR, EncoderArgs, EncoderStep

from instruct_embed.catalog import Precision, get_spec
from instruct_embed.export.torch_session import TorchGraphSession


class TritonPythonModel:
    def initialize(self, args):
        model = EncoderArgs.parse(args)
        parameters = model.parameters
        device = parameters["torch_device"]
        if device == "cuda" and args.get("model_instance_kind") == "GPU":
            device = f"cuda:{args['model_instance_device_id']}"  # KIND_GPU: the GPU Triton gave this instance
        session = TorchGraphSession(
            get_spec(parameters["catalog_model"]),
            model.version_dir / WEIGHTS_DIR,
            device=device,
            precision=Precision(parameters["torch_precision"]),
            trust_remote_code=parameters.get("trust_remote_code") == "1",
            memory_fraction=float(parameters.get("gpu_memory_fraction", "0")),
            cpu_threads=model.settings.intra_op_threads,
        )
        session.warm_up()
        self.step = EncoderStep(pb_utils, SubBatchedEncoder(session, model.settings), model.name)

    def execute(self, requests):
        return self.step.execute(requests)
