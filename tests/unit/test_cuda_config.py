"""The cuda target's rendered config and the flags that choose it, without a server or a GPU."""

from __future__ import annotations

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import Precision, get_spec
from instruct_embed.cli import CUDA_TOKEN_BUDGET, build_parser, serving_options
from instruct_embed.repository.configs import ServingOptions, encoder_config
from instruct_embed.repository.targets import EncoderTarget, TorchDevice


def _parameters(config: mc.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


@pytest.mark.parametrize(
    ("model", "precision"), [("e5-large-v2", "fp16"), ("bge-m3", "fp16"), ("e5-mistral-7b-instruct", "bf16")]
)
def test_gpu_instances_in_the_familys_precision(model: str, precision: str) -> None:
    config = encoder_config(get_spec(model), ServingOptions(target=EncoderTarget.CUDA, encoder_instances=3))
    assert config.backend == "python"
    assert [(g.kind, g.count) for g in config.instance_group] == [(mc.ModelInstanceGroup.KIND_GPU, 3)]
    parameters = _parameters(config)
    assert parameters["torch_device"] == "cuda" and parameters["torch_precision"] == precision
    assert parameters["catalog_model"] == model
    assert all(i.allow_ragged_batch for i in config.input)  # rows of many requests re-batched by length


def test_cpu_tensors_run_on_cpu_instances_and_a_pinned_precision_is_kept() -> None:
    options = ServingOptions(target=EncoderTarget.CUDA, torch_device=TorchDevice.CPU, torch_precision=Precision.FP32)
    config = encoder_config(get_spec("multilingual-e5-small"), options)
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert _parameters(config)["torch_precision"] == "fp32"


def test_a_memory_fraction_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"gpu_memory_fraction 1\.5 must be between 0"):
        ServingOptions(target=EncoderTarget.CUDA, gpu_memory_fraction=1.5)


def test_serve_device_cuda_flags_become_the_gpu_serving_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--device", "cuda", "--encoder-instances", "1", "--gpu-memory-fraction", "0.4"]
    )
    options = serving_options(args, EncoderTarget.CUDA)
    assert options.target is EncoderTarget.CUDA and options.torch_device is TorchDevice.CUDA
    assert (options.encoder_instances, options.gpu_memory_fraction) == (1, 0.4)
    assert options.token_budget == CUDA_TOKEN_BUDGET and options.encoder_on_gpu


def test_prepare_on_cpu_tensors_keeps_the_cpu_budget() -> None:
    args = build_parser().parse_args(["prepare", "multilingual-e5-small", "--target", "cuda", "--torch-device", "cpu"])
    options = serving_options(args, EncoderTarget.CUDA)
    assert options.torch_device is TorchDevice.CPU and not options.encoder_on_gpu
    assert options.token_budget == ServingOptions().token_budget
