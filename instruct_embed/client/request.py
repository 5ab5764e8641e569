"""What one encode call asks for, how it becomes Triton inputs, and how a served model describes itself."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from instruct_embed.runtime.contract import (
    BINARY,
    CALIBRATED_TYPES,
    CHUNK,
    CHUNK_MODES,
    CHUNK_OUTPUTS,
    CHUNK_OVERLAP,
    DEFAULT_TRUNCATE,
    DIMENSIONS,
    EMBEDDING_OUTPUTS,
    EMBEDDING_TYPES,
    ENCODER_PRECISION_KEY,
    FLOAT,
    INSTRUCTION,
    INSTRUCTION_KIND,
    INT8,
    PRECISION_CHOICE_KEY,
    RETRIEVAL,
    ROLE,
    SERVED_TYPES_KEY,
    SPEC_PARAMETER,
    TASK,
    TEXT,
    TOKEN_COUNT,
    TRUNCATE,
    UBINARY,
    UINT8,
    WINDOWS,
    is_step_name,
)

from .errors import InvalidRequest

QUERY_PRIORITY = 1  # the rendered configs give bulk the last of their priority levels
# The numpy type each storage type arrives in (the ensemble's outputs: repository/configs.py).
OUTPUT_DTYPES = {FLOAT: np.float32, INT8: np.int8, UINT8: np.uint8, BINARY: np.int8, UBINARY: np.uint8}


@dataclass(frozen=True)
class Item:
    """A text to embed (the shape the seed's client used)."""

    text: str


Texts = str | Iterable[str | Item]


def texts_of(texts: Texts) -> list[str]:
    """The texts as strings; raises InvalidRequest for one that has no UTF-8 form (a lone surrogate)."""
    if isinstance(texts, str):
        texts = [texts]
    out = []
    for entry in texts:
        if isinstance(entry, Item):
            out.append(entry.text)
        elif isinstance(entry, str):
            out.append(entry)
        else:
            raise TypeError(f"texts must be str or Item, got {type(entry).__name__}")
        _check_utf8(out[-1], len(out) - 1)
    return out


def _check_utf8(text: str, row: int) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequest(
            f"text {row} is not valid UTF-8 ({error.reason} at character {error.start}); send Unicode text"
        ) from None


@dataclass(frozen=True)
class EncodeRequest:
    role: str
    task: str | None = None
    instruction: str | None = None
    truncate: str = "end"
    priority: int = 0  # Triton priority level; 0 = the model's default (bulk). Queries go ahead at level 1.
    instruction_kind: str | None = None  # INSTRUCTION_KIND; None: the named task's kind, else retrieval
    dimensions: int | None = None  # DIMENSIONS: a Matryoshka size the server cuts EMBEDDING to; None: full width
    output_type: str = FLOAT  # which storage type's output is asked for (EMBEDDING_TYPES)
    chunk: str | None = None  # CHUNK windows | mean; None: one vector per text, cut per `truncate`
    chunk_overlap: int | None = None  # CHUNK_OVERLAP; None: the server's default

    @classmethod
    def make(
        cls,
        *,
        is_query: bool = False,
        role: str | None = None,
        task: str | None = None,
        instruction: str | None = None,
        instruction_kind: str | None = None,
        truncate: str = "end",
        priority: int | None = None,
        dimensions: int | None = None,
        output_type: str = FLOAT,
        chunk: str | None = None,
        chunk_overlap: int | None = None,
    ) -> EncodeRequest:
        """Checks the output type and chunk mode (they choose what is asked for) and nothing the server checks
        (roles, tasks, kinds, sizes, overlaps): its errors name the allowed values.

        Unless `priority` is given, queries are sent at level 1, ahead of bulk documents (level 0: default).
        """
        if output_type not in EMBEDDING_TYPES:
            raise InvalidRequest(f"unknown output_type {output_type!r}; allowed: {', '.join(EMBEDDING_TYPES)}")
        if chunk is not None and chunk not in CHUNK_MODES:
            raise InvalidRequest(f"unknown chunk {chunk!r}; allowed: {', '.join(CHUNK_MODES)} (or None: truncate)")
        chosen = role or ("query" if is_query else "document")
        level = priority if priority is not None else (QUERY_PRIORITY if chosen == "query" else 0)
        return cls(
            chosen,
            task or None,
            instruction or None,
            truncate,
            level,
            instruction_kind or None,
            dimensions,
            output_type,
            chunk,
            chunk_overlap,
        )

    def for_model(self, served: ServedModel) -> EncodeRequest:
        """The request as sent to `served`: DIMENSIONS equal to its width asks for nothing, so it is not sent.
        Raises InvalidRequest for a storage type `served` does not serve."""
        if self.output_type not in served.embedding_types:
            why = (
                " (int8 and uint8 need the ranges `instruct-embed prepare` calibrates; this repository was rendered "
                "without them)"
                if self.output_type in CALIBRATED_TYPES
                else ""
            )
            raise InvalidRequest(
                f"output_type {self.output_type!r}: model '{served.name}' serves "
                f"{', '.join(served.embedding_types)}{why}"
            )
        return dataclasses.replace(self, dimensions=None) if self.dimensions == served.dim else self

    @property
    def output(self) -> str:
        """The ensemble output that carries the vectors asked for."""
        return EMBEDDING_OUTPUTS[self.output_type]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(OUTPUT_DTYPES[self.output_type])

    def width(self, served: ServedModel) -> int:
        """Components (or, for the sign-bit types, bytes) per vector in the answer."""
        dim = self.dimensions or served.dim
        return -(-dim // 8) if self.output_type in (BINARY, UBINARY) else dim


@dataclass(frozen=True)
class ServedModel:
    """A served model as the server describes it (read from its config, not a local catalog)."""

    name: str
    dim: int
    max_batch_size: int
    query_template: str
    document_template: str
    tasks: dict[str, str]  # task name -> its instruction
    default_task: str | None
    max_length: int
    matryoshka_dims: tuple[int, ...] = ()
    outputs: tuple[str, ...] = ("dense",)
    symmetric_template: str = ""  # every text of a symmetric request gets it; "" (not served): the query template
    task_kinds: dict[str, str] = field(default_factory=dict)  # task name -> "retrieval" | "symmetric"
    embedding_types: tuple[str, ...] = (FLOAT,)  # a server older than storage types serves float alone
    # What the encoder computes in ("bf16 (OpenVINO)") and why ("auto: ..."); "" from a server that does not say.
    encoder_precision: str = ""
    precision_choice: str = ""

    def __post_init__(self) -> None:
        # A server older than task kinds sends neither: its symmetric template is the query template, and every
        # task is a retrieval task (as that server treated them).
        if not self.symmetric_template:
            object.__setattr__(self, "symmetric_template", self.query_template)
        kinds = {name: self.task_kinds.get(name, RETRIEVAL) for name in self.tasks}
        object.__setattr__(self, "task_kinds", {**self.task_kinds, **kinds})


def parse_config(name: str, config: Mapping[str, Any]) -> ServedModel:
    """Read the spec an instruct-embed ensemble carries in its parameters; KeyError if it carries none."""
    spec = json.loads(config["parameters"][SPEC_PARAMETER]["string_value"])
    return ServedModel(
        name=name,
        dim=int(spec["dim"]),
        max_batch_size=int(config.get("max_batch_size", 0)),
        query_template=spec["query_template"],
        document_template=spec["document_template"],
        tasks=dict(spec.get("tasks") or {}),
        default_task=spec.get("default_task"),
        max_length=int(spec["max_length"]),
        matryoshka_dims=tuple(int(d) for d in spec.get("matryoshka_dims") or ()),
        outputs=tuple(spec.get("outputs") or ("dense",)),
        symmetric_template=str(spec.get("symmetric_template") or ""),
        task_kinds={str(k): str(v) for k, v in (spec.get("task_kinds") or {}).items()},
        embedding_types=tuple(spec.get(SERVED_TYPES_KEY) or (FLOAT,)),
        encoder_precision=str(spec.get(ENCODER_PRECISION_KEY) or ""),
        precision_choice=str(spec.get(PRECISION_CHOICE_KEY) or ""),
    )


def _column(module: Any, name: str, values: list[str]) -> Any:
    array = np.array([[v.encode("utf-8")] for v in values], dtype=np.object_)
    tensor = module.InferInput(name, list(array.shape), "BYTES")
    tensor.set_data_from_numpy(array)
    return tensor


# The columns that repeat one value on every row (ROLE, TASK, ..., DIMENSIONS) are the same tensors request after
# request: made once per (module, name, value, rows) and shared (tritonclient copies them into each request and
# never changes them). Bounded: a free-text INSTRUCTION makes one entry per text.
def _constant_column(module: Any, name: str, value: Any, n: int, datatype: str = "BYTES") -> Any:
    try:
        return _cached_column(module, name, value, n, datatype)
    except TypeError:  # an unhashable value: made afresh (and refused as before)
        return _make_constant_column(module, name, value, n, datatype)


def _make_constant_column(module: Any, name: str, value: Any, n: int, datatype: str) -> Any:
    if datatype == "BYTES":
        return _column(module, name, [value] * n)
    tensor = module.InferInput(name, [n, 1], datatype)
    tensor.set_data_from_numpy(np.full((n, 1), value, dtype=np.int32))
    return tensor


_cached_column = functools.lru_cache(maxsize=256)(_make_constant_column)


def build_inputs(module: Any, texts: list[str], request: EncodeRequest) -> list[Any]:
    """[n, 1] BYTES inputs: TEXT and ROLE always, TASK / INSTRUCTION / INSTRUCTION_KIND / TRUNCATE / CHUNK when
    set; and DIMENSIONS / CHUNK_OVERLAP (INT32) when asked for."""
    n = len(texts)
    inputs = [_column(module, TEXT, texts), _constant_column(module, ROLE, request.role, n)]
    if request.task:
        inputs.append(_constant_column(module, TASK, request.task, n))
    if request.instruction:
        inputs.append(_constant_column(module, INSTRUCTION, request.instruction, n))
    if request.instruction_kind:
        inputs.append(_constant_column(module, INSTRUCTION_KIND, request.instruction_kind, n))
    if request.truncate != DEFAULT_TRUNCATE:
        inputs.append(_constant_column(module, TRUNCATE, request.truncate, n))
    if request.chunk:
        inputs.append(_constant_column(module, CHUNK, request.chunk, n))
    for name, value in ((DIMENSIONS, request.dimensions), (CHUNK_OVERLAP, request.chunk_overlap)):
        if value is not None:
            inputs.append(_constant_column(module, name, value, n, "INT32"))
    return inputs


def requested_outputs(module: Any, request: EncodeRequest) -> list[Any]:
    """The vectors of the storage type asked for and the token counts; the spans too for CHUNK windows."""
    return list(_requested_outputs(module, request.output, request.chunk == WINDOWS))


@functools.lru_cache(maxsize=64)
def _requested_outputs(module: Any, output: str, windows: bool) -> tuple[Any, ...]:
    """Made once per output asked for and shared, as the constant columns."""
    names = [output, TOKEN_COUNT, *(CHUNK_OUTPUTS if windows else ())]
    return tuple(module.InferRequestedOutput(name) for name in names)


def ensemble_candidates(index: Any, protocol: str) -> list[str]:
    """Names of READY models in a repository index that may be embedding ensembles (not their steps)."""
    entries = [{"name": m.name, "state": m.state} for m in index.models] if protocol == "grpc" else index
    return [e["name"] for e in entries if e.get("state") == "READY" and not is_step_name(e["name"])]


def ensemble_steps(config: Mapping[str, Any]) -> list[str]:
    """The models an ensemble's config runs (preprocess, encoder, and a Matryoshka model's postprocess)."""
    return [str(step["model_name"]) for step in config.get("ensemble_scheduling", {}).get("step", [])]
