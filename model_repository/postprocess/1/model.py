"""Triton Python model: a Matryoshka model's postprocess step (the DIMENSIONS cut). The logic is in
instruct_embed_runtime.matryoshka."""

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.contract import DENSE, SIZES
from instruct_embed_runtime.matryoshka import matryoshka_prefix


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:  # one request's rows share one size (checked by the preprocess step)
            try:
                embedding = pb_utils.get_input_tensor_by_name(request, DENSE).as_numpy()
                sizes = pb_utils.get_input_tensor_by_name(request, SIZES).as_numpy()
                cut = pb_utils.Tensor(DENSE, matryoshka_prefix(embedding, sizes))
                responses.append(pb_utils.InferenceResponse(output_tensors=[cut]))
            except Exception as error:  # a bug fails this request alone, never the others of the batch
                failure = pb_utils.TritonError(f"postprocess failed: {type(error).__name__}: {error}")
                responses.append(pb_utils.InferenceResponse(error=failure))
        return responses
