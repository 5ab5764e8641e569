"""Runs a serialized engine with the TensorRT 10 runtime on torch CUDA tensors (parity and the GPU test only)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .environment import import_tensorrt
from .profiles import Profile, ShapeRange, select_profile

# TensorRT DataType member names -> (torch dtype name, numpy dtype for host data).
DTYPES = {
    "FLOAT": ("float32", np.float32),
    "HALF": ("float16", np.float16),
    "BF16": ("bfloat16", None),
    "INT32": ("int32", np.int32),
    "INT64": ("int64", np.int64),
    "BOOL": ("bool", np.bool_),
}


class EngineRunner:
    """One execution context over all of the engine's profiles; `run` picks the profile that fits the feed.

    Feeds are numpy arrays named as the engine's inputs; outputs come back as float32 numpy arrays.
    """

    def __init__(self, engine_path: Path, trt: ModuleType | None = None) -> None:
        import torch

        self._torch = torch
        self._trt = trt or import_tensorrt()
        logger = self._trt.Logger(self._trt.Logger.WARNING)
        self._runtime = self._trt.Runtime(logger)
        self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {engine_path} (built by another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        input_mode = self._trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == input_mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != input_mode]
        self.profiles = [
            Profile({n: self._range(n, p) for n in self.inputs}) for p in range(self.engine.num_optimization_profiles)
        ]
        self.stream = torch.cuda.Stream()
        self._active_profile: int | None = None

    def _range(self, name: str, profile: int) -> ShapeRange:
        low, opt, high = (tuple(d) for d in self.engine.get_tensor_profile_shape(name, profile))
        return ShapeRange(low, opt, high)

    def _dtype(self, name: str) -> tuple[Any, Any]:
        torch_name, numpy_type = DTYPES[self.engine.get_tensor_dtype(name).name]
        return getattr(self._torch, torch_name), numpy_type

    def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        profile = select_profile(self.profiles, {n: feed[n].shape for n in self.inputs})
        with torch.cuda.stream(self.stream):
            if profile != self._active_profile:
                self.context.set_optimization_profile_async(profile, self.stream.cuda_stream)
                self._active_profile = profile
            keep = []
            for name in self.inputs:
                _, numpy_type = self._dtype(name)
                tensor = torch.from_numpy(np.ascontiguousarray(feed[name], dtype=numpy_type)).to("cuda")
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
                keep.append(tensor)
            outputs = {}
            for name in self.outputs:
                torch_type, _ = self._dtype(name)
                shape = tuple(self.context.get_tensor_shape(name))
                outputs[name] = torch.empty(shape, dtype=torch_type, device="cuda")
                self.context.set_tensor_address(name, outputs[name].data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
        self.stream.synchronize()
        return {name: value.float().cpu().numpy() for name, value in outputs.items()}
