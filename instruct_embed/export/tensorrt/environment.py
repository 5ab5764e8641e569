"""What a real build needs, found or named: the `tensorrt` package and a CUDA GPU (through PyTorch).

Every message here names the missing piece and where to get it, because the usual way to meet it is to run
inside the NGC container rather than to install anything.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from instruct_embed.containers import TENSORRT_IMAGE, TENSORRT_VERSION, TRITON_IMAGE

TENSORRT_HINT = (
    f"the `tensorrt` Python package (TensorRT {TENSORRT_VERSION}, the one in {TRITON_IMAGE} that will load the plan); "
    f"run in the export image (docker/export/Dockerfile, FROM {TENSORRT_IMAGE}) or "
    f"`pip install tensorrt-cu12=={TENSORRT_VERSION}`"
)
GPU_HINT = "a CUDA GPU visible to PyTorch (torch.cuda.is_available() is False{detail})"


class MissingRequirement(RuntimeError):
    """TensorRT or a GPU is not available here; the message names each missing piece."""


@dataclass(frozen=True)
class BuildEnvironment:
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]


def import_tensorrt() -> ModuleType:
    """The `tensorrt` module, or MissingRequirement naming it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as error:
        raise MissingRequirement(f"missing {TENSORRT_HINT} ({error})") from None


def _gpu_problem() -> str | None:
    try:
        import torch
    except ImportError:
        return GPU_HINT.format(detail="; torch is not installed")
    if torch.cuda.is_available():
        return None
    build = "a CPU-only torch build" if torch.version.cuda is None else f"torch built for CUDA {torch.version.cuda}"
    return GPU_HINT.format(detail=f"; {build} {torch.__version__}")


def missing_requirements() -> list[str]:
    """What is missing for a real build and parity run here; empty when both are present."""
    missing = []
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        missing.append(TENSORRT_HINT)
    gpu = _gpu_problem()
    if gpu is not None:
        missing.append(gpu)
    return missing


def require_build_environment() -> BuildEnvironment:
    """TensorRT's version and the GPU's name and compute capability; MissingRequirement lists what is absent."""
    missing = missing_requirements()
    if missing:
        raise MissingRequirement("cannot build a TensorRT engine here; missing: " + "; and ".join(missing))
    import torch

    trt = import_tensorrt()
    major, minor = torch.cuda.get_device_capability(0)
    return BuildEnvironment(str(trt.__version__), torch.cuda.get_device_name(0), (major, minor))


def engine_filename(compute_capability: tuple[int, int]) -> str:
    """model.sm90.plan for an H100: a plan only runs on the GPU architecture it was built on."""
    major, minor = compute_capability
    return f"model.sm{major}{minor}.plan"


def cc_key(compute_capability: tuple[int, int]) -> str:
    """The key Triton's cc_model_filenames uses for a compute capability: '9.0'."""
    major, minor = compute_capability
    return f"{major}.{minor}"
