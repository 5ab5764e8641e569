"""Overload control in the rendered configs: a bounded queue and wait at the encoder (where requests wait), refusals
as REJECT; the preprocess step keeps a plain batcher so that Triton's batcher never strands a request there."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import get_spec
from instruct_embed.repository.configs import ServingOptions, encoder_config, preprocess_config
from instruct_embed.repository.targets import EncoderTarget


@pytest.mark.parametrize("target", [EncoderTarget.PYTHON_ORT, EncoderTarget.ONNXRUNTIME])
def test_the_encoder_refuses_past_a_bounded_queue_and_wait(target: EncoderTarget) -> None:
    spec = get_spec("multilingual-e5-small")
    policy = encoder_config(spec, ServingOptions(target=target)).dynamic_batching.default_queue_policy
    assert policy.max_queue_size == 64
    assert policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert policy.default_timeout_microseconds == 30_000_000
    assert policy.allow_timeout_override


@pytest.mark.parametrize("target", [EncoderTarget.PYTHON_ORT, EncoderTarget.ONNXRUNTIME])
def test_the_preprocess_batcher_can_prefetch(target: EncoderTarget) -> None:
    # Triton's batcher prefetches payloads only without priority levels and without any queue limit or timeout
    # (PriorityQueue::SupportPrefetching). Without prefetching, a request arriving while every instance is busy
    # does not wake a batcher in its 500 ms idle wait. Whatever the serving options, the preprocess step qualifies.
    options = ServingOptions(target=target, priority_levels=2, max_queue_size=8, queue_timeout_us=1_000_000)
    batching = preprocess_config(get_spec("multilingual-e5-small"), options).dynamic_batching
    assert batching.priority_levels == 0
    assert not batching.HasField("default_queue_policy")
    assert not batching.priority_queue_policy
    assert batching.max_queue_delay_microseconds == 0


def test_the_limits_come_from_the_serving_options() -> None:
    options = ServingOptions(max_queue_size=8, queue_timeout_us=2_000_000, allow_timeout_override=False)
    config = encoder_config(get_spec("all-MiniLM-L6-v2"), options)
    rendered = text_format.MessageToString(config)
    assert "max_queue_size: 8" in rendered and "default_timeout_microseconds: 2000000" in rendered
    assert not config.dynamic_batching.default_queue_policy.allow_timeout_override


def test_zero_means_unbounded_as_in_triton() -> None:
    config = encoder_config(get_spec("all-MiniLM-L6-v2"), ServingOptions(max_queue_size=0, queue_timeout_us=0))
    policy = config.dynamic_batching.default_queue_policy
    assert policy.max_queue_size == 0 and policy.default_timeout_microseconds == 0


def test_the_cpu_encoder_runs_two_instances_that_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two instances by default: with priorities and queue bounds on, Triton's batcher wakes for a request only
    # while an instance is free, so one busy instance left the end of a query burst waiting up to 500 ms.
    from instruct_embed.runtime import cpu_encoder
    from instruct_embed.runtime.cpu_encoder import CpuEncoderSettings

    config = encoder_config(get_spec("multilingual-e5-small"), ServingOptions())
    assert [group.count for group in config.instance_group] == [2]
    parameters = {k: v.string_value for k, v in config.parameters.items()}
    assert parameters["ort_intra_op_threads"] == "0"
    monkeypatch.setattr(cpu_encoder.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert CpuEncoderSettings.from_parameters(parameters, instances=2).intra_op_threads == 4
    assert CpuEncoderSettings.from_parameters(parameters, instances=16).intra_op_threads == 1
    assert CpuEncoderSettings.from_parameters({**parameters, "ort_intra_op_threads": "3"}, 2).intra_op_threads == 3


def test_the_onnxruntime_backend_on_cpu_is_told_to_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    # Triton's onnxruntime backend would give each instance one thread per core (2 instances: 2x the cores).
    from instruct_embed.runtime import cpu_encoder

    monkeypatch.setattr(cpu_encoder.os, "sched_getaffinity", lambda pid: set(range(8)))
    spec = get_spec("multilingual-e5-small")
    options = ServingOptions(target=EncoderTarget.ONNXRUNTIME)
    parameters = encoder_config(spec, options).parameters
    assert parameters["intra_op_thread_count"].string_value == str(8 // options.encoder_instances)
    pinned = encoder_config(spec, ServingOptions(target=EncoderTarget.ONNXRUNTIME, ort_intra_op_threads=3))
    assert pinned.parameters["intra_op_thread_count"].string_value == "3"
    on_gpu = encoder_config(spec, ServingOptions(target=EncoderTarget.ONNXRUNTIME, gpu=True))
    assert "intra_op_thread_count" not in on_gpu.parameters
