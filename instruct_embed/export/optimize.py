"""ONNX Runtime graph optimisation through optimum: fused attention, LayerNorm and GELU for encoder families.

The exported graph is plain ONNX (hundreds of small ops per layer); ONNX Runtime's transformer optimiser fuses
them into its contrib kernels (Attention, SkipLayerNormalization, BiasGelu), which the CPU and the Triton
onnxruntime backend run faster. The fused graph uses com.microsoft ops, so it is for ONNX Runtime only: the
TensorRT path keeps the plain graph and fuses on its own.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from instruct_embed.catalog import ModelSpec
from instruct_embed.catalog.families import traits


def can_optimize(spec: ModelSpec) -> bool:
    """optimum's fusion knows the family's model type (the decoder families are left to TensorRT)."""
    return traits(spec.family).ort_fusable


def optimize_onnx(spec: ModelSpec, hf_dir: Path, onnx_path: Path, out_path: Path) -> Path:
    """Write the fused graph of `onnx_path` to `out_path` (level 2: fusions valid on CPU and GPU)."""
    if not can_optimize(spec):
        raise ValueError(f"{spec.name}: no ONNX Runtime fusion for the {spec.family.value} family")
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    with tempfile.TemporaryDirectory(dir=out_path.parent) as scratch:
        work = Path(scratch)
        shutil.copyfile(onnx_path, work / "model.onnx")
        shutil.copyfile(hf_dir / "config.json", work / "config.json")  # the model type and head count to fuse
        optimizer = ORTOptimizer.from_pretrained(work, file_names=["model.onnx"])
        config = OptimizationConfig(optimization_level=2, optimize_for_gpu=False, enable_gelu_approximation=False)
        optimizer.optimize(save_dir=work / "out", optimization_config=config)
        shutil.move(work / "out" / "model_optimized.onnx", out_path)
    return out_path
