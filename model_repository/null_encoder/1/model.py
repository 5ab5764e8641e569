"""Triton Python model: the null encoder (right shapes, no model), for measuring the pipeline's ceiling."""

import json

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.contract import ATTENTION_MASK
from instruct_embed_runtime.null_encoder import OUTPUTS_PARAMETER, NullEncoder, outputs_from_parameter


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.encoder = NullEncoder(outputs_from_parameter(config["parameters"][OUTPUTS_PARAMETER]["string_value"]))

    def execute(self, requests):
        masks = [pb_utils.get_input_tensor_by_name(r, ATTENTION_MASK).as_numpy() for r in requests]
        feeds = [{ATTENTION_MASK: mask} for mask in masks]
        return [
            pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(n, v) for n, v in result.items()])
            for result in self.encoder.run_requests(feeds)
        ]
