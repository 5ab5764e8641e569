"""Triton Python model: the encoder step on ONNX Runtime (CPU), for servers without the ORT backend."""

import json
from pathlib import Path

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.ort_encoder import OrtEncoder, OrtSettings

ONNX_FILE = "model.onnx"


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.encoder = OrtEncoder(str(version_dir / ONNX_FILE), OrtSettings.from_parameters(parameters))

    def execute(self, requests):
        feeds = []
        for request in requests:
            feeds.append(
                {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.encoder.input_names}
            )
        try:
            results = self.encoder.run_requests(feeds)
        except Exception as error:  # one failed run fails its requests, never the model
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"encoder failed: {error}")) for _ in feeds]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, v) for n, v in result.items()])
            for result in results
        ]
