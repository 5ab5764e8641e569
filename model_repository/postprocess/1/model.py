"""Triton Python model: the ensemble's postprocess step (the Matryoshka cut, CHUNK mean, the storage types). The
logic is in instruct_embed_runtime.postprocess."""

from pathlib import Path

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.contract import DENSE, OUTPUT_ROW, SIZES
from instruct_embed_runtime.postprocess import Postprocessor


class TritonPythonModel:
    def initialize(self, args):
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.postprocessor = Postprocessor.from_version_dir(version_dir)

    def execute(self, requests):
        responses = []
        for request in requests:  # one request's rows share one size (checked by the preprocess step)
            try:
                dense, sizes, rows = (
                    pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in (DENSE, SIZES, OUTPUT_ROW)
                )
                outputs = self.postprocessor(dense, sizes, rows)
                tensors = [pb_utils.Tensor(name, value) for name, value in outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # a bug fails this request alone, never the others of the batch
                failure = pb_utils.TritonError(f"postprocess failed: {type(error).__name__}: {error}")
                responses.append(pb_utils.InferenceResponse(error=failure))
        return responses
