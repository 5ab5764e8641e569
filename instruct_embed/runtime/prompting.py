"""Prompt resolution: which prefix a text gets, as one pure function.

The template: a retrieval request (the default) uses the role's own template; a symmetric one (a symmetric
named task, or INSTRUCTION_KIND ``symmetric`` with a free-text instruction) uses the model's symmetric template
for every text, whatever its role, as the model authors embed STS, classification and clustering texts.

Precedence (highest first), as in sentence-transformers' `prompt` > `prompt_name` > default:
1. role ``raw``: the text is sent as written;
2. the text already begins with one of the model's own prefixes (any role): it is sent as written, so a
   caller who wrote ``query: ...`` or ``Instruct: ...\\nQuery: ...`` by hand does not get it twice;
3. an explicit instruction (free text) fills the ``{task}`` slot;
4. a named task's instruction;
5. the model's default task (retrieval requests only: a symmetric one must say what the task is).
Templates are a prefix followed by ``{text}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .contract import DEFAULT_ROLE, INSTRUCTION_KINDS, RETRIEVAL, ROLES, SYMMETRIC, TASK_SLOT, TEXT_SLOT
from .errors import RequestError


@dataclass(frozen=True)
class PromptTemplates:
    """The model card's templates and task instructions (a view of the catalog spec)."""

    query_template: str
    document_template: str
    tasks: Mapping[str, str] = field(default_factory=dict)
    default_task: str | None = None
    model_name: str = "model"
    symmetric_template: str | None = None  # None: the query template
    task_kinds: Mapping[str, str] = field(default_factory=dict)  # a task missing here is a retrieval task

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> PromptTemplates:
        tasks = config.get("tasks") or {}
        kinds = config.get("task_kinds") or {}
        assert isinstance(tasks, Mapping) and isinstance(kinds, Mapping)
        symmetric = config.get("symmetric_template")
        return cls(
            query_template=str(config["query_template"]),
            document_template=str(config["document_template"]),
            tasks={str(k): str(v) for k, v in tasks.items()},
            default_task=None if config.get("default_task") is None else str(config["default_task"]),
            model_name=str(config.get("name", "model")),
            symmetric_template=None if symmetric is None else str(symmetric),
            task_kinds={str(k): str(v) for k, v in kinds.items()},
        )

    @property
    def symmetric(self) -> str:
        return self.symmetric_template or self.query_template

    @property
    def all_templates(self) -> tuple[str, str, str]:
        return (self.query_template, self.document_template, self.symmetric)

    @property
    def takes_instruction(self) -> bool:
        return any(TASK_SLOT in template for template in self.all_templates)

    def kind_of(self, task: str) -> str:
        return self.task_kinds.get(task, RETRIEVAL)


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
    kind: str | None = None,
) -> Prompt:
    """Apply the model card's template for `role` and the request's task kind to `text`.

    Raises RequestError for an unknown role, task or kind, for a kind that contradicts the named task, for
    an instruction sent to a model whose templates take none, and for a symmetric request to an instruction
    model that names no task or instruction.
    """
    role = role or DEFAULT_ROLE
    if role not in ROLES:
        raise RequestError(f"unknown ROLE {role!r}; allowed: {', '.join(ROLES)}")
    kind = request_kind(templates, task or None, instruction or None, kind or None)
    instruction = instruction or None
    task = task or None
    if role == "raw":
        return Prompt("", text)
    written = _prefix_already_written(templates, text)
    if written is not None:
        return Prompt(text[:written], text[written:])
    if kind == SYMMETRIC:
        template = templates.symmetric
    else:
        template = templates.query_template if role == "query" else templates.document_template
    prefix = template[: -len(TEXT_SLOT)]
    if TASK_SLOT in prefix:
        if instruction is None and task is None and kind == SYMMETRIC:
            raise RequestError(
                f"a symmetric request to model {templates.model_name!r} puts the task's instruction on every text "
                f"({template!r}); send a symmetric TASK ({', '.join(_tasks_of_kind(templates, SYMMETRIC))}) "
                "or an INSTRUCTION"
            )
        chosen = instruction or templates.tasks[task or str(templates.default_task)]
        prefix = prefix.replace(TASK_SLOT, chosen)
    return Prompt(prefix, text)


def request_kind(templates: PromptTemplates, task: str | None, instruction: str | None, kind: str | None) -> str:
    """The task kind a request resolves to, checked: INSTRUCTION_KIND where sent (it must agree with a named TASK
    unless an INSTRUCTION replaces that task's), else the TASK's kind, else retrieval."""
    if kind is not None and kind not in INSTRUCTION_KINDS:
        raise RequestError(f"unknown INSTRUCTION_KIND {kind!r}; allowed: {', '.join(INSTRUCTION_KINDS)}")
    if instruction is not None and not templates.takes_instruction:
        raise RequestError(
            f"model {templates.model_name!r} takes no free-text instruction (its templates are "
            f"{templates.query_template!r} / {templates.document_template!r} / {templates.symmetric!r}); "
            "send a named TASK, or INSTRUCTION_KIND alone, instead"
        )
    if task is None:
        return kind or RETRIEVAL
    if not templates.tasks:
        raise RequestError(
            f"model {templates.model_name!r} takes no task (its templates are {templates.query_template!r} / "
            f"{templates.document_template!r}); send no TASK"
        )
    if task not in templates.tasks:
        raise RequestError(f"unknown TASK {task!r}; allowed: {', '.join(sorted(templates.tasks))}")
    task_kind = templates.kind_of(task)
    if instruction is not None:  # the instruction replaces the task's, and may be of either kind
        return kind or task_kind
    if kind is not None and kind != task_kind:
        raise RequestError(
            f"TASK {task!r} is a {task_kind} task, but INSTRUCTION_KIND is {kind!r}; send INSTRUCTION_KIND "
            f"{task_kind!r} or none (a free-text INSTRUCTION takes any kind)"
        )
    return task_kind


def _tasks_of_kind(templates: PromptTemplates, kind: str) -> list[str]:
    return sorted(name for name in templates.tasks if templates.kind_of(name) == kind)


def _prefix_already_written(templates: PromptTemplates, text: str) -> int | None:
    """Length of a model prefix `text` already starts with, or None."""
    for template in templates.all_templates:
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
