"""Miniatures shared by the family tests: prepared once per test process (and cached on disk across runs)."""

from __future__ import annotations

import functools
from typing import Any

from instruct_embed.catalog import ModelSpec, get_spec

# Every seed model that needs a miniature (the two local models are tested with their real weights).
MINIATURE_MODELS = (
    "e5-mistral-7b-instruct",
    "gte-Qwen2-7B-instruct",
    "gte-Qwen2-1.5B-instruct",
    "NV-Embed-v2",
    "bge-m3",
    "e5-large-v2",
    "multilingual-e5-large-instruct",
    "bge-large-en-v1.5",
)

QUERIES = (
    "how much protein should a female eat",
    "¿Cuál es la capital de Francia?",
    "东京有多少人口",
)
DOCUMENTS = (
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day.",
    "Paris est la capitale de la France. " * 30,  # longer than the miniatures' 128 tokens: truncated
    "x",
)


@functools.cache
def prepared(name: str) -> Any:
    """`prepare <name> --miniature`: built, exported, validated and rendered into the miniature repository."""
    from instruct_embed.prepare import PrepareOptions, prepare_model

    return prepare_model(name, PrepareOptions(miniature=True))


@functools.cache
def mini_spec(name: str) -> ModelSpec:
    from instruct_embed.local_models.miniatures import miniature_spec

    return miniature_spec(get_spec(name), prepared(name).hf_dir)


@functools.cache
def oracle(name: str) -> Any:
    from instruct_embed.export.oracles import reference_for

    return reference_for(mini_spec(name), prepared(name).hf_dir)
