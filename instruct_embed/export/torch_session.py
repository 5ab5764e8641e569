"""The export's graph module run by PyTorch itself: the encoder step of the `cuda` target.

The module is the one the ONNX graph is traced from (families.build_module: the model card's pooling, end token
and normalisation), so the served vectors and the exported graph cannot drift apart; only the attention kernels
differ (SDPA here, eager ops in the export). It answers the same `run(feed) -> {output: array}` as the CPU graph
sessions (runtime/graph_sessions.py), so the encoder's length-sorted, token-budgeted sub-batching is shared too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from instruct_embed.catalog import ModelSpec, Precision
from instruct_embed.catalog.tensors import encoder_input_names, encoder_outputs

from .families import build_module

SERVING_ATTENTION = "sdpa"
CUDA = "cuda"


class NoCudaDevice(RuntimeError):
    """The cuda encoder was asked for where torch sees no CUDA device."""


def cuda_problem() -> str | None:
    """Why torch cannot run on a CUDA device here, or None when it can."""
    if torch.version.cuda is None:
        return f"this torch ({torch.__version__}) is built without CUDA; install a CUDA build of torch"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device (torch.cuda.is_available() is False: no NVIDIA GPU or driver visible)"
    return None


def require_device(device: str) -> None:
    """Refuse `cuda` (or `cuda:N`) where no CUDA device is visible, naming the fix."""
    problem = cuda_problem() if torch.device(device).type == CUDA else None
    if problem:
        raise NoCudaDevice(
            f"the cuda encoder needs a CUDA device and {problem}; serve on a machine with an NVIDIA GPU, or use the "
            "CPU encoder (the default target)"
        )


class TorchGraphSession:
    """`spec`'s graph module from `hf_dir` on `device` in `precision`, fp32 outputs as numpy arrays."""

    def __init__(
        self,
        spec: ModelSpec,
        hf_dir: Path,
        device: str,
        precision: Precision,
        trust_remote_code: bool = False,
        memory_fraction: float = 0.0,
        cpu_threads: int = 0,
    ) -> None:
        require_device(device)
        self.device = torch.device(device)
        if self.device.type == "cpu" and cpu_threads > 0:
            torch.set_num_threads(cpu_threads)  # instances share the cores instead of each taking them all
        if self.device.type == CUDA and memory_fraction > 0:
            # A cap on this process's caching allocator, so instances (or other servers) can share one GPU.
            torch.cuda.set_per_process_memory_fraction(memory_fraction, self.device)
        self.precision = precision
        module = build_module(spec, hf_dir, self.precision, trust_remote_code, attention=SERVING_ATTENTION)
        self.module = module.to(self.device).eval()
        self.input_names = list(encoder_input_names(spec))
        outputs = encoder_outputs(spec)
        self.output_names = [o.name for o in outputs]
        self.per_token_outputs = {o.name for o in outputs if o.per_token}

    @torch.inference_mode()
    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feed[n])).to(self.device) for n in self.input_names]
        result = self.module(*args)
        values = (result,) if isinstance(result, torch.Tensor) else tuple(result)
        # One device-to-host copy per output; .float() keeps fp32 outputs whatever the weights' precision.
        return {name: v.float().cpu().numpy() for name, v in zip(self.output_names, values, strict=True)}

    def warm_up(self, lengths: tuple[int, ...] = (16, 128), rows: int = 8) -> None:
        """A few runs before traffic, so kernels are chosen and memory is allocated before the first request."""
        for length in lengths:
            ids = (np.arange(rows * length, dtype=np.int64).reshape(rows, length) % 1000) + 10
            feed = {name: ids if name == "input_ids" else np.ones_like(ids) for name in self.input_names}
            self.run(feed)
