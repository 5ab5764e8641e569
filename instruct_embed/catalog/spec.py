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
    TaskKind,
    WeightSource,
)
from instruct_embed.catalog.families import traits
from instruct_embed.catalog.instructions import Task
from instruct_embed.runtime.contract import ATTENTION_MASK, INPUT_IDS, POOL_MASK, TASK_SLOT, TEXT_SLOT


@dataclass(frozen=True)
class ModelSpec:
    """Everything the project needs to know about one embedder.

    Templates are prefixes followed by ``{text}``; a ``{task}`` slot takes the task instruction. A retrieval task
    gives queries `query_template` and documents `document_template`; a symmetric task gives every text
    `symmetric_template` (None: the query template, which is what the authors of every catalog model but the
    BGE English models put on all texts of a symmetric task). Every task of `tasks` is accepted, also by a model
    whose templates have no ``{task}`` slot: there its kind still picks the template (e5: ``query: `` on every
    text of an STS task), while a free-text instruction, which such a model cannot take, is refused.
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
    tasks: Mapping[str, Task] = field(default_factory=dict)
    default_task: str | None = None
    symmetric_template: str | None = None
    normalize: bool = True
    add_special_tokens: bool = True
    append_token: str | None = None
    padding_side: PaddingSide = PaddingSide.RIGHT
    bidirectional: bool = True
    instruction_masked_in_pooling: bool = False
    outputs: tuple[Output, ...] = (Output.DENSE,)
    precision_override: Precision | None = None  # None: the family's engine precision (catalog/families.py)
    tolerance: float = 0.9999
    trust_remote_code: bool = False
    weights: WeightSource = WeightSource.HUB
    matryoshka_dims: tuple[int, ...] = ()
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        if self.symmetric_template is None:
            object.__setattr__(self, "symmetric_template", self.query_template)
        for role, template in self.templates_by_kind().items():
            if not template.endswith(TEXT_SLOT) or template.count(TEXT_SLOT) != 1:
                raise ValueError(f"{self.name}: {role} template must end with {TEXT_SLOT}: {template!r}")
            if TASK_SLOT in template and not self.tasks:
                raise ValueError(f"{self.name}: {role} template has {TASK_SLOT} but the spec names no tasks")
        if self.default_task is not None and self.default_task not in self.tasks:
            raise ValueError(f"{self.name}: default task {self.default_task!r} is not among its tasks")
        if self.default_task is not None and self.tasks[self.default_task].kind is not TaskKind.RETRIEVAL:
            raise ValueError(f"{self.name}: the default task applies to queries, so it must be a retrieval task")
        if self.takes_instruction and self.default_task is None:
            raise ValueError(f"{self.name}: a model whose templates take an instruction needs a default task")
        if self.pooling is Pooling.LAST_TOKEN and self.padding_side is not PaddingSide.RIGHT:
            # Export pools at attention_mask.sum(-1) - 1, which is only the last real token with right padding.
            raise ValueError(f"{self.name}: last-token pooling is exported for right padding only")

    @property
    def default_precision(self) -> Precision:
        """The precision engines and exports are built in unless asked otherwise."""
        return self.precision_override or traits(self.family).engine_precision

    def templates_by_kind(self) -> dict[str, str]:
        """The three templates: a retrieval task's query and document templates and a symmetric task's."""
        return {
            "query": self.query_template,
            "document": self.document_template,
            "symmetric": str(self.symmetric_template),
        }

    @property
    def takes_instruction(self) -> bool:
        """True when a template has a task slot, so a free-text INSTRUCTION means something."""
        return any(TASK_SLOT in template for template in self.templates_by_kind().values())

    @property
    def encoder_inputs(self) -> tuple[str, ...]:
        """What the preprocess step feeds the encoder: input_ids and attention_mask, plus pool_mask for
        latent-attention pooling."""
        if self.pooling is Pooling.LATENT_ATTENTION:
            return (INPUT_IDS, ATTENTION_MASK, POOL_MASK)
        return (INPUT_IDS, ATTENTION_MASK)

    def runtime_config(self) -> dict[str, Any]:
        """The JSON-able subset the Triton preprocess model and the client need (no torch, no catalog)."""
        return {
            "name": self.name,
            "hf_id": self.hf_id,
            "query_template": self.query_template,
            "document_template": self.document_template,
            "symmetric_template": self.symmetric_template,
            "tasks": {name: task.instruction for name, task in self.tasks.items()},
            "task_kinds": {name: task.kind.value for name, task in self.tasks.items()},
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
            "encoder_inputs": list(self.encoder_inputs),
        }
