"""Every catalog template pinned to its model card, and the spec's own invariants."""

from __future__ import annotations

import pytest

from instruct_embed.catalog import ModelSpec, Pooling, Task, TaskKind, get_spec, model_names
from instruct_embed.catalog.enums import Family, Precision

INSTRUCT = "Instruct: {task}\nQuery: {text}"
QWEN3 = "Instruct: {task}\nQuery:{text}"  # no space after "Query:" (the Qwen3-Embedding card)
E5 = ("query: {text}", "passage: {text}", "query: {text}")  # e5's authors: "query: " on symmetric tasks
BGE_EN = ("Represent this sentence for searching relevant passages: {text}", "{text}", "{text}")
PLAIN = ("{text}", "{text}", "{text}")
INSTRUCTED = (INSTRUCT, "{text}", INSTRUCT)  # the instruction on queries, and on every text of a symmetric task
N = None

# (query, document, symmetric template), pooling, dim, appended token, max length, Matryoshka sizes, licence:
# each from the model card (and MTEB 2.x's metadata where it states them).
CARDS = {
    "e5-mistral-7b-instruct": (INSTRUCTED, Pooling.LAST_TOKEN, 4096, "</s>", 4096, (), "MIT"),
    "Linq-Embed-Mistral": (INSTRUCTED, Pooling.LAST_TOKEN, 4096, "</s>", 4096, (), "CC-BY-NC-4.0"),
    "SFR-Embedding-Mistral": (INSTRUCTED, Pooling.LAST_TOKEN, 4096, "</s>", 4096, (), "CC-BY-NC-4.0"),
    "gte-Qwen2-7B-instruct": (INSTRUCTED, Pooling.LAST_TOKEN, 3584, "<|endoftext|>", 32768, (), "Apache-2.0"),
    "gte-Qwen2-1.5B-instruct": (INSTRUCTED, Pooling.LAST_TOKEN, 1536, "<|endoftext|>", 32768, (), "Apache-2.0"),
    "NV-Embed-v2": (INSTRUCTED, Pooling.LATENT_ATTENTION, 4096, "</s>", 32768, (), "CC-BY-NC-4.0"),
    "Qwen3-Embedding-0.6B": (
        (QWEN3, "{text}", QWEN3),
        Pooling.LAST_TOKEN,
        1024,
        "<|endoftext|>",
        32768,
        (32, 64, 128, 256, 512, 768, 1024),
        "Apache-2.0",
    ),
    "Qwen3-Embedding-4B": (
        (QWEN3, "{text}", QWEN3),
        Pooling.LAST_TOKEN,
        2560,
        "<|endoftext|>",
        32768,
        (32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 2560),
        "Apache-2.0",
    ),
    "Qwen3-Embedding-8B": (
        (QWEN3, "{text}", QWEN3),
        Pooling.LAST_TOKEN,
        4096,
        "<|endoftext|>",
        32768,
        (32, 64, 128, 256, 512, 768, 1024, 1536, 2048, 4096),
        "Apache-2.0",
    ),
    "bge-m3": (PLAIN, Pooling.CLS, 1024, N, 8192, (), "MIT"),
    "e5-large-v2": (E5, Pooling.MEAN, 1024, N, 512, (), "MIT"),
    "e5-base-v2": (E5, Pooling.MEAN, 768, N, 512, (), "MIT"),
    "multilingual-e5-large": (E5, Pooling.MEAN, 1024, N, 512, (), "MIT"),
    "multilingual-e5-small": (E5, Pooling.MEAN, 384, N, 512, (), "MIT"),
    "multilingual-e5-large-instruct": (INSTRUCTED, Pooling.MEAN, 1024, N, 512, (), "MIT"),
    "bge-large-en-v1.5": (BGE_EN, Pooling.CLS, 1024, N, 512, (), "MIT"),
    "bge-base-en-v1.5": (BGE_EN, Pooling.CLS, 768, N, 512, (), "MIT"),
    "bge-small-en-v1.5": (BGE_EN, Pooling.CLS, 384, N, 512, (), "MIT"),
    "snowflake-arctic-embed-l-v2.0": (
        ("query: {text}", "{text}", "{text}"),
        Pooling.CLS,
        1024,
        N,
        8192,
        (256, 1024),
        "Apache-2.0",
    ),
    "gte-modernbert-base": (PLAIN, Pooling.CLS, 768, N, 8192, (), "Apache-2.0"),
    "all-MiniLM-L6-v2": (PLAIN, Pooling.MEAN, 384, N, 256, (), "Apache-2.0"),
}

# The authors' symmetric instructions, character by character (e5-mistral's unilm e5/utils.py; the Qwen authors'
# evaluation code drops the STS instruction's final period).
STS = {
    "e5-mistral-7b-instruct": "Retrieve semantically similar text.",
    "Qwen3-Embedding-0.6B": "Retrieve semantically similar text",
}
SYMMETRIC_TASKS = {
    "sts",
    "summarization",
    "banking77",
    "amazon_polarity",
    "emotion",
    "arxiv_clustering",
    "twenty_newsgroups",
}


def test_catalog_holds_exactly_the_carded_models() -> None:
    assert sorted(CARDS) == model_names()


@pytest.mark.parametrize("name", sorted(CARDS))
def test_templates_match_the_model_card(name: str) -> None:
    spec = get_spec(name)
    templates, pooling, dim, append, max_length, matryoshka, licence = CARDS[name]
    assert (spec.query_template, spec.document_template, spec.symmetric_template) == templates
    assert spec.pooling is pooling
    assert spec.dim == dim
    assert spec.append_token == append
    assert spec.max_length == max_length
    assert spec.matryoshka_dims == matryoshka
    assert spec.license == licence
    # Every task is of the kind the authors' evaluation gives it; the served spec carries the kinds.
    assert {n for n, t in spec.tasks.items() if t.kind is TaskKind.SYMMETRIC} == SYMMETRIC_TASKS
    carried = spec.runtime_config()
    assert carried["task_kinds"] == {n: t.kind.value for n, t in spec.tasks.items()}
    assert carried["symmetric_template"] == templates[2]


@pytest.mark.parametrize(("name", "sts"), sorted(STS.items()))
def test_sts_instruction_is_the_authors(name: str, sts: str) -> None:
    assert get_spec(name).tasks["sts"].instruction == sts
    assert get_spec("gte-Qwen2-7B-instruct").tasks["sts"].instruction == STS["Qwen3-Embedding-0.6B"]


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
        decoder = spec.family in (Family.MISTRAL, Family.QWEN2, Family.QWEN3, Family.NV_EMBED)
        assert spec.default_precision is (Precision.BF16 if decoder else Precision.FP16), name


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"known models: Linq-Embed-Mistral, NV-Embed-v2, Qwen3-Embedding-0\.6B"):
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
