"""The Triton layout the renderer fills: the top-level model_repository/ folder, one model folder per kind of step.

Each holds the config every model of its kind starts from (`config.pbtxt`) and, for the Python-backend steps, the
`1/model.py` that rendering copies beside the runtime package. The package reaches it through the `layout` link
beside this module (setuptools copies what it points to into the wheel), so an installed instruct-embed renders
from the same files a checkout shows.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.runtime.contract import POSTPROCESS, PREPROCESS

LAYOUT = Path(__file__).parent / "layout"
VERSION = "1"  # every rendered model has one version
CONFIG_FILE = "config.pbtxt"
PYTHON_MODEL_FILE = "model.py"

# The layout's folders, one per kind of Triton model the renderer writes: the ensemble's, the steps' (named after
# them), and one per encoder target (EncoderTarget.layout).
ENSEMBLE = "ensemble"
__all__ = ["ENSEMBLE", "LAYOUT", "POSTPROCESS", "PREPROCESS", "VERSION", "base_config", "python_model"]


def read_config(path: Path) -> mc.ModelConfig:
    return text_format.Parse(path.read_text(), mc.ModelConfig())


def write_config(config: mc.ModelConfig, model_dir: Path) -> Path:
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / CONFIG_FILE
    path.write_text(text_format.MessageToString(config))
    return path


def base_config(kind: str) -> mc.ModelConfig:
    """The config every model of `kind` (a folder of the layout) starts from."""
    return read_config(LAYOUT / kind / CONFIG_FILE)


def python_model(kind: str) -> Path:
    """The Triton Python model (`1/model.py`) of a Python-backend `kind`."""
    return LAYOUT / kind / VERSION / PYTHON_MODEL_FILE
