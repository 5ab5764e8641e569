"""Prompt resolution: which prefix a text gets, as one pure function.

Precedence (highest first), as in sentence-transformers' `prompt` > `prompt_name` > default:
1. role ``raw``: the text is sent as written;
2. the text already begins with one of the model's own prefixes (any role): it is sent as written, so a
   caller who wrote ``query: ...`` or ``Instruct: ...\\nQuery: ...`` by hand does not get it twice;
3. an explicit instruction (free text) fills the ``{task}`` slot;
4. a named task's instruction;
5. the model's default task.
Templates are a prefix followed by ``{text}``; only the role's own template is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import RequestError

ROLES = ("query", "document", "raw")
DEFAULT_ROLE = "document"
TEXT_SLOT = "{text}"
TASK_SLOT = "{task}"


@dataclass(frozen=True)
class PromptTemplates:
    """The model card's templates and task instructions (a view of the catalog spec)."""

    query_template: str
    document_template: str
    tasks: Mapping[str, str] = field(default_factory=dict)
    default_task: str | None = None
    model_name: str = "model"

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> PromptTemplates:
        tasks = config.get("tasks") or {}
        assert isinstance(tasks, Mapping)
        return cls(
            query_template=str(config["query_template"]),
            document_template=str(config["document_template"]),
            tasks={str(k): str(v) for k, v in tasks.items()},
            default_task=None if config.get("default_task") is None else str(config["default_task"]),
            model_name=str(config.get("name", "model")),
        )

    @property
    def takes_instruction(self) -> bool:
        return TASK_SLOT in self.query_template or TASK_SLOT in self.document_template


@dataclass(frozen=True)
class Prompt:
    """A text split into the prefix the template added (or the caller wrote) and the text itself.

    The split matters for models that exclude the instruction from pooling (NV-Embed-v2).
    """

    prefix: str
    text: str

    @property
    def full(self) -> str:
        return self.prefix + self.text


def resolve_prompt(
    templates: PromptTemplates,
    text: str,
    role: str | None = None,
    task: str | None = None,
    instruction: str | None = None,
) -> Prompt:
    """Apply the model card's template for `role` to `text`.

    Raises RequestError for an unknown role or task, and for a task or instruction sent to a model
    whose templates take none.
    """
    role = role or DEFAULT_ROLE
    if role not in ROLES:
        raise RequestError(f"unknown ROLE {role!r}; allowed: {', '.join(ROLES)}")
    instruction = instruction or None
    task = task or None
    if (task or instruction) and not templates.takes_instruction:
        raise RequestError(
            f"model {templates.model_name!r} takes no task instruction (its templates are "
            f"{templates.query_template!r} / {templates.document_template!r}); send no TASK or INSTRUCTION"
        )
    if task is not None and task not in templates.tasks:
        raise RequestError(f"unknown TASK {task!r}; allowed: {', '.join(sorted(templates.tasks))}")
    if role == "raw":
        return Prompt("", text)
    written = _prefix_already_written(templates, text)
    if written is not None:
        return Prompt(text[:written], text[written:])
    template = templates.query_template if role == "query" else templates.document_template
    prefix = template[: -len(TEXT_SLOT)]
    if TASK_SLOT in prefix:
        chosen = instruction or templates.tasks[task or str(templates.default_task)]
        prefix = prefix.replace(TASK_SLOT, chosen)
    return Prompt(prefix, text)


def _prefix_already_written(templates: PromptTemplates, text: str) -> int | None:
    """Length of a model prefix `text` already starts with, or None."""
    for template in (templates.query_template, templates.document_template):
        prefix = template[: -len(TEXT_SLOT)]
        if not prefix:
            continue
        if TASK_SLOT not in prefix:
            if text.startswith(prefix):
                return len(prefix)
            continue
        head, tail = prefix.split(TASK_SLOT, 1)
        if text.startswith(head):
            end = text.find(tail, len(head))
            if end >= 0:
                return end + len(tail)
    return None
