"""The Triton side of a sub-batching encoder (the CPU one and the cuda one): early answers, failure isolation and
the padding-efficiency metrics. `pb_utils` is the Python backend's module, passed in by the model.py that owns it
(it exists only inside Triton's stub process)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cpu_encoder import CpuEncoderSettings, RunStats, SubBatchedEncoder

SUB_BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128]
WEIGHTS_DIR = "hf"  # the cuda encoder's transformers folder, beside its model.py (the renderer links it in)


@dataclass(frozen=True)
class EncoderArgs:
    """What an encoder model's initialize(args) reads: its config, parameters, version folder and settings."""

    name: str
    parameters: dict[str, str]
    version_dir: Path
    settings: CpuEncoderSettings

    @classmethod
    def parse(cls, args: dict[str, str]) -> EncoderArgs:
        config = json.loads(args["model_config"])
        parameters = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        instances = sum(group.get("count", 1) for group in config.get("instance_group", [])) or 1
        version_dir = Path(args["model_repository"]) / args["model_version"]
        return cls(config["name"], parameters, version_dir, CpuEncoderSettings.from_parameters(parameters, instances))


class EncoderStep:
    def __init__(self, pb_utils: Any, encoder: SubBatchedEncoder, model: str) -> None:
        self.pb_utils = pb_utils
        self.encoder = encoder
        self._metrics(model)

    def _metrics(self, model: str) -> None:
        # Padding efficiency on /metrics: real tokens / computed (padded) tokens, and sub-batch sizes.
        # The families must outlive their metrics, so both are kept on the step.
        pb_utils = self.pb_utils
        labels = {"model": model}
        counter, histogram = pb_utils.MetricFamily.COUNTER, pb_utils.MetricFamily.HISTOGRAM
        self.families = {
            "real": pb_utils.MetricFamily(
                name="instruct_embed_real_tokens_total", description="Tokens of real text encoded", kind=counter
            ),
            "computed": pb_utils.MetricFamily(
                name="instruct_embed_computed_tokens_total",
                description="Tokens computed by the encoder, padding included",
                kind=counter,
            ),
            "runs": pb_utils.MetricFamily(
                name="instruct_embed_sub_batches_total", description="Encoder graph runs", kind=counter
            ),
            "rows": pb_utils.MetricFamily(
                name="instruct_embed_sub_batch_rows", description="Rows per encoder graph run", kind=histogram
            ),
        }
        self.real_tokens = self.families["real"].Metric(labels=labels)
        self.computed_tokens = self.families["computed"].Metric(labels=labels)
        self.sub_batches = self.families["runs"].Metric(labels=labels)
        self.sub_batch_rows = self.families["rows"].Metric(labels=labels, buckets=SUB_BATCH_BUCKETS)

    def execute(self, requests: list[Any]) -> None:
        # Each request is answered through its response sender as soon as its own rows have run, not when the
        # whole batch has: a query batched with long documents (its rows run first) leaves before they finish.
        # Triton then takes the single final response per request from the senders, and execute returns None.
        pb_utils = self.pb_utils
        feeds = [
            {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy() for name in self.encoder.input_names}
            for request in requests
        ]
        senders = [request.get_response_sender() for request in requests]
        answered = [False] * len(requests)
        final = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL

        def send(index: int, result: dict[str, Any]) -> None:
            tensors = [pb_utils.Tensor(name, value) for name, value in result.items()]
            senders[index].send(pb_utils.InferenceResponse(output_tensors=tensors), flags=final)
            answered[index] = True

        stats = RunStats()
        try:
            self.encoder.run_requests(feeds, stats, on_done=send)
        except Exception as error:  # one failed run fails the requests not yet answered, never the model
            failure = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"encoder failed: {error}"))
            for index, sender in enumerate(senders):
                if not answered[index]:
                    sender.send(failure, flags=final)
            return None
        self.real_tokens.increment(stats.real_tokens)
        self.computed_tokens.increment(stats.computed_tokens)
        self.sub_batches.increment(len(stats.sub_batch_rows))
        for rows in stats.sub_batch_rows:
            self.sub_batch_rows.observe(rows)
        return None
