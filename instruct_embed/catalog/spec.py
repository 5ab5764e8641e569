"""The typed model spec: the single source of truth for export, rendering, serving and the client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from instruct_embed.catalog.enums import (
    Family,
    Output,
    PaddingSide,
    Pooling,
    Precision,
    WeightSource,
)

TEXT_SLOT = "{text}"
TASK_SLOT = "{task}"


@dataclass(frozen=True)
class ModelSpec:
    """Everything the project needs to know about one embedder.

    Templates are prefixes followed by ``{text}``; a ``{task}`` slot takes the task instruction.
    `append_token` is the token written after the (truncated) text, as the model card does by hand
    (e5-mistral appends ``</s>``, gte-Qwen2 ``<|endoftext|>``); it is named here rather than read
    from the tokenizer's ``eos_token``, which for Qwen2 is a different token.
    """

    name: str
    hf_id: str
    family: Family
    query_template: str
    document_template: str
    pooling: Pooling
    dim: int
    max_length: int
    license: str
    tasks: Mapping[str, str] = field(default_factory=dict)
    default_task: str | None = None
    normalize: bool = True
    add_special_tokens: bool = True
    append_token: str | None = None
    padding_side: PaddingSide = PaddingSide.RIGHT
    bidirectional: bool = True
    instruction_masked_in_pooling: bool = False
    outputs: tuple[Output, ...] = (Output.DENSE,)
    default_precision: Precision = Precision.FP16
    tolerance: float = 0.9999
    trust_remote_code: bool = False
    weights: WeightSource = WeightSource.HUB
    matryoshka_dims: tuple[int, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        for role, template in (("query", self.query_template), ("document", self.document_template)):
            if not template.endswith(TEXT_SLOT) or template.count(TEXT_SLOT) != 1:
                raise ValueError(f"{self.name}: {role} template must end with {TEXT_SLOT}: {template!r}")
            if TASK_SLOT in template and not self.tasks:
                raise ValueError(f"{self.name}: {role} template has {TASK_SLOT} but the spec names no tasks")
        if self.default_task is not None and self.default_task not in self.tasks:
            raise ValueError(f"{self.name}: default task {self.default_task!r} is not among its tasks")
        if self.tasks and self.default_task is None:
            raise ValueError(f"{self.name}: a model with tasks needs a default task")
        if self.pooling is Pooling.LAST_TOKEN and self.padding_side is not PaddingSide.RIGHT:
            # Export pools at attention_mask.sum(-1) - 1, which is only the last real token with right padding.
            raise ValueError(f"{self.name}: last-token pooling is exported for right padding only")

    @property
    def takes_instruction(self) -> bool:
        """True when a template has a task slot, so TASK and INSTRUCTION mean something."""
        return TASK_SLOT in self.query_template or TASK_SLOT in self.document_template

    def runtime_config(self) -> dict[str, Any]:
        """The JSON-able subset the Triton preprocess model and the client need (no torch, no catalog)."""
        return {
            "name": self.name,
            "hf_id": self.hf_id,
            "query_template": self.query_template,
            "document_template": self.document_template,
            "tasks": dict(self.tasks),
            "default_task": self.default_task,
            "add_special_tokens": self.add_special_tokens,
            "append_token": self.append_token,
            "padding_side": self.padding_side.value,
            "max_length": self.max_length,
            "dim": self.dim,
            "pooling": self.pooling.value,
            "instruction_masked_in_pooling": self.instruction_masked_in_pooling,
            "outputs": [o.value for o in self.outputs],
            "matryoshka_dims": list(self.matryoshka_dims),
            "license": self.license,
        }
