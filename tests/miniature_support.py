"""Miniatures shared by the family tests: prepared once per test process (and cached on disk across runs)."""

from __future__ import annotations

import functools
from typing import Any

from instruct_embed.catalog import ModelSpec, WeightSource, get_spec, model_names

# Every catalog model but the two local ones (tested with their real weights) is tested on its miniature.
MINIATURE_MODELS = tuple(n for n in model_names() if get_spec(n).weights is WeightSource.HUB)


def serving_path(spec: ModelSpec) -> tuple[Any, ...]:
    """What decides how a model is served: two models with the same path differ only in the real weights' size."""
    return (
        spec.family,
        spec.query_template,
        spec.document_template,
        spec.symmetric_template,
        spec.pooling,
        spec.append_token,
        spec.bidirectional,
        spec.outputs,
    )


def _one_per_serving_path(names: tuple[str, ...]) -> tuple[str, ...]:
    chosen: dict[tuple[Any, ...], str] = {}
    for name in names:
        chosen.setdefault(serving_path(get_spec(name)), name)
    return tuple(chosen.values())


# The seed's models first, so that they stand for their serving paths as before.
_SEED = (
    "e5-mistral-7b-instruct",
    "gte-Qwen2-7B-instruct",
    "NV-Embed-v2",
    "bge-m3",
    "e5-large-v2",
    "multilingual-e5-large-instruct",
    "bge-large-en-v1.5",
)
# Served end to end by one local Triton: one model per serving path (e5-base-v2 is served as e5-large-v2 is).
SERVED_MODELS = _one_per_serving_path((*_SEED, *MINIATURE_MODELS))


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
