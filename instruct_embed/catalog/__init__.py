"""Model catalog: typed specs, one per model, registered by name."""

from instruct_embed.catalog.enums import Family, Output, PaddingSide, Pooling, Precision, WeightSource
from instruct_embed.catalog.registry import DEFAULT_MODEL, get_spec, model_names, register
from instruct_embed.catalog.spec import ModelSpec

__all__ = [
    "DEFAULT_MODEL",
    "Family",
    "ModelSpec",
    "Output",
    "PaddingSide",
    "Pooling",
    "Precision",
    "WeightSource",
    "get_spec",
    "model_names",
    "register",
]
