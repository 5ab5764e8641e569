"""Triton Python model: the ensemble's preprocess step. Thin: the logic is in instruct_embed_runtime."""

import json
import os
from pathlib import Path

import triton_python_backend_utils as pb_utils
from instruct_embed_runtime.contract import OPTIONAL_INPUTS, TEXT
from instruct_embed_runtime.errors import RequestError
from instruct_embed_runtime.preprocess import Preprocessor


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = config.get("parameters", {}).get("tokenizer_threads", {}).get("string_value", "1")
        # Read by the tokenizers library when its thread pool first starts (on the first batch).
        os.environ["RAYON_NUM_THREADS"] = threads
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.preprocessor = Preprocessor.from_model_dir(config, version_dir)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                text = pb_utils.get_input_tensor_by_name(request, TEXT).as_numpy()
                optional = {}
                for name in OPTIONAL_INPUTS:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    optional[name.lower()] = None if tensor is None else tensor.as_numpy()
                outputs = self.preprocessor(text, **optional)
                tensors = [pb_utils.Tensor(name, value) for name, value in outputs.items()]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except RequestError as error:  # the caller's mistake: 400 / INVALID_ARGUMENT, not worth a retry
                failure = pb_utils.TritonError(str(error), pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=failure))
            except Exception as error:  # a bug fails this request alone, never the others of the batch
                failure = pb_utils.TritonError(f"preprocess failed: {type(error).__name__}: {error}")
                responses.append(pb_utils.InferenceResponse(error=failure))
        return responses
