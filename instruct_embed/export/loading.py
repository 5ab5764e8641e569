"""Loading a transformers encoder for export or as the reference."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel

from instruct_embed.catalog import ModelSpec, Precision

TORCH_DTYPES = {Precision.FP32: torch.float32, Precision.FP16: torch.float16, Precision.BF16: torch.bfloat16}


class RemoteCodeRefused(RuntimeError):
    """The model's code lives in its hub repository and the caller did not opt in."""


def load_encoder(
    spec: ModelSpec,
    hf_dir: Path,
    precision: Precision = Precision.FP32,
    trust_remote_code: bool = False,
    attention: str = "eager",
) -> torch.nn.Module:
    """A fresh encoder in eval mode. Eager attention exports to plain ONNX ops; the PyTorch encoder step serves
    with "sdpa" (torch's fused attention kernels).

    Raises RemoteCodeRefused when the spec needs remote code and `trust_remote_code` is False.
    """
    if spec.trust_remote_code and not trust_remote_code:
        raise RemoteCodeRefused(
            f"{spec.name} runs modeling code from its Hugging Face repository; pass --trust-remote-code "
            "after reading that code"
        )
    model = AutoModel.from_pretrained(
        hf_dir,
        dtype=TORCH_DTYPES[precision],
        attn_implementation=attention,
        trust_remote_code=trust_remote_code and spec.trust_remote_code,
        use_safetensors=True,
    )
    model.eval()
    return model
