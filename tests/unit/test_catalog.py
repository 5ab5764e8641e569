"""Every catalog template pinned to its model card, and the spec's own invariants."""

from __future__ import annotations

import pytest

from instruct_embed.catalog import ModelSpec, Pooling, Task, TaskKind, get_spec, model_names
from instruct_embed.catalog.enums import Family, Precision

INSTRUCT = "Instruct: {task}\nQuery: {text}"

# (query template, document template, pooling, dim, appended token)
CARDS = {
    "e5-mistral-7b-instruct": (INSTRUCT, "{text}", Pooling.LAST_TOKEN, 4096, "</s>"),
    "gte-Qwen2-7B-instruct": (INSTRUCT, "{text}", Pooling.LAST_TOKEN, 3584, "<|endoftext|>"),
    "gte-Qwen2-1.5B-instruct": (INSTRUCT, "{text}", Pooling.LAST_TOKEN, 1536, "<|endoftext|>"),
    "NV-Embed-v2": (INSTRUCT, "{text}", Pooling.LATENT_ATTENTION, 4096, "</s>"),
    "bge-m3": ("{text}", "{text}", Pooling.CLS, 1024, None),
    "e5-large-v2": ("query: {text}", "passage: {text}", Pooling.MEAN, 1024, None),
    "multilingual-e5-large-instruct": (INSTRUCT, "{text}", Pooling.MEAN, 1024, None),
    "bge-large-en-v1.5": (
        "Represent this sentence for searching relevant passages: {text}",
        "{text}",
        Pooling.CLS,
        1024,
        None,
    ),
    "multilingual-e5-small": ("query: {text}", "passage: {text}", Pooling.MEAN, 384, None),
    "all-MiniLM-L6-v2": ("{text}", "{text}", Pooling.MEAN, 384, None),
}


def test_catalog_holds_exactly_the_seed_models() -> None:
    assert sorted(CARDS) == model_names()


@pytest.mark.parametrize("name", sorted(CARDS))
def test_templates_match_the_model_card(name: str) -> None:
    spec = get_spec(name)
    query, document, pooling, dim, append = CARDS[name]
    assert (spec.query_template, spec.document_template) == (query, document)
    assert spec.pooling is pooling
    assert spec.dim == dim
    assert spec.append_token == append


def test_e5_mistral_default_instruction_is_the_web_search_one() -> None:
    spec = get_spec("e5-mistral-7b-instruct")
    assert spec.tasks[spec.default_task] == Task(
        "Given a web search query, retrieve relevant passages that answer the query", TaskKind.RETRIEVAL
    )
    assert spec.tasks["sts"] == Task("Retrieve semantically similar text.", TaskKind.SYMMETRIC)
    assert not spec.bidirectional


def test_gte_qwen2_is_bidirectional_and_nv_embed_masks_its_instruction() -> None:
    assert get_spec("gte-Qwen2-7B-instruct").bidirectional
    nv = get_spec("NV-Embed-v2")
    assert nv.instruction_masked_in_pooling and nv.trust_remote_code and nv.license == "CC-BY-NC-4.0"


def test_decoders_default_to_bf16_and_encoders_to_fp16() -> None:
    for name in model_names():
        spec = get_spec(name)
        decoder = spec.family in (Family.MISTRAL, Family.QWEN2, Family.NV_EMBED)
        assert spec.default_precision is (Precision.BF16 if decoder else Precision.FP16), name


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known models: NV-Embed-v2, all-MiniLM-L6-v2"):
        get_spec("e5-nope")


def test_a_template_must_end_with_the_text_slot() -> None:
    with pytest.raises(ValueError, match="must end with"):
        ModelSpec(
            name="bad",
            hf_id="x/bad",
            family=Family.BERT,
            query_template="{text} query",
            document_template="{text}",
            pooling=Pooling.MEAN,
            dim=8,
            max_length=16,
            license="MIT",
        )


def test_last_token_pooling_requires_right_padding() -> None:
    from instruct_embed.catalog.enums import PaddingSide

    with pytest.raises(ValueError, match="right padding"):
        ModelSpec(
            name="bad",
            hf_id="x/bad",
            family=Family.MISTRAL,
            query_template="{text}",
            document_template="{text}",
            pooling=Pooling.LAST_TOKEN,
            padding_side=PaddingSide.LEFT,
            dim=8,
            max_length=16,
            license="MIT",
        )


def test_runtime_config_round_trips_through_json() -> None:
    import json

    config = get_spec("e5-mistral-7b-instruct").runtime_config()
    assert json.loads(json.dumps(config)) == config
    assert config["append_token"] == "</s>" and config["padding_side"] == "right"
