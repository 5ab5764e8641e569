"""The OpenAI embeddings request and response shapes, plus NVIDIA-style `input_type` and `truncate`.

Also `task`, `instruction` and `instruction_kind`, the ensemble's TASK, INSTRUCTION and INSTRUCTION_KIND.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from instruct_embed.runtime.contract import SYMMETRIC

# input_type values and the ensemble ROLE they mean.
INPUT_TYPES = {
    "query": "query",
    "passage": "document",
    "document": "document",
    "classification": "document",
    "clustering": "document",
}
# Cohere's input_types for texts compared with each other rather than searched: they also mean
# INSTRUCTION_KIND symmetric, so every text gets the model's symmetric template (the role is then moot). On a model
# whose symmetric template takes an instruction, the request must also name a symmetric task or an instruction.
INPUT_TYPE_KINDS = {"classification": SYMMETRIC, "clustering": SYMMETRIC}
# A strict OpenAI client cannot send input_type, so the model name may carry it.
MODEL_SUFFIXES = {"-query": "query", "-passage": "document", "-document": "document"}


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI fields (e.g. `user`) are accepted and ignored

    input: str | list[str] = Field(description="a text or a list of texts")
    model: str
    input_type: str | None = Field(
        default=None,
        description="query | passage | document (default) | classification | clustering (the last two: "
        "instruction_kind symmetric)",
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="float: numbers; base64: the vector's bytes (little-endian float32, or one byte per int8 / "
        "uint8 component or per 8 sign bits)",
    )
    embedding_type: Literal["float", "int8", "uint8", "binary", "ubinary"] = Field(
        default="float",
        description="the storage type the server returns (NIM's embedding_type): int8 / uint8 over the model's "
        "calibrated ranges, binary / ubinary the sign bits packed 8 per byte",
    )
    chunk: Literal["windows", "mean"] | None = Field(
        default=None,
        description="a text over the model's limit as token windows instead of cut: mean returns one vector per "
        "text (the windows' mean, renormalised), windows one entry per window with its tokens and chars spans",
    )
    chunk_overlap: int | None = Field(default=None, ge=0, description="text tokens neighbouring windows share (32)")
    dimensions: int | None = Field(default=None, ge=1)
    truncate: str | None = Field(default=None, description="END (default) | START | NONE")
    task: str | None = Field(default=None, description="a named task of the model (its instruction fills {task})")
    instruction: str | None = Field(default=None, description="free-text instruction; overrides task")
    instruction_kind: str | None = Field(
        default=None,
        description="retrieval (each role its own template) | symmetric (every text the model's symmetric "
        "template); default: the task's kind, else retrieval",
    )
    user: str | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int  # the input's index (with chunk windows, each of its windows carries it)
    embedding: list[float] | list[int] | str
    # chunk windows only: the window's [start, end) in the text's tokens and in its characters
    tokens: list[int] | None = None
    chars: list[int] | None = None


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "instruct-embed"
    dimensions: int
    query_template: str
    document_template: str
    symmetric_template: str
    tasks: list[str]
    task_kinds: dict[str, str]  # each task's kind: retrieval | symmetric
    embedding_types: list[str]  # the storage types it serves


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
