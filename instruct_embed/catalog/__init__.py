"""Model catalog: typed specs, one per model, registered by name."""

from instruct_embed.catalog.enums import Family, Output, PaddingSide, Pooling, Precision, TaskKind, WeightSource
from instruct_embed.catalog.instructions import Task
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
    "Task",
    "TaskKind",
    "WeightSource",
    "get_spec",
    "model_names",
    "register",
]
