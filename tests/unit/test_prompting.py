"""Prompt resolution: the precedence raw > written-by-caller > instruction > task > default."""

from __future__ import annotations

import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.runtime.errors import RequestError
from instruct_embed.runtime.prompting import PromptTemplates, resolve_prompt


def templates(name: str) -> PromptTemplates:
    return PromptTemplates.from_config(get_spec(name).runtime_config())


MISTRAL = templates("e5-mistral-7b-instruct")
E5 = templates("multilingual-e5-small")
WEB = "Given a web search query, retrieve relevant passages that answer the query"


def test_default_role_is_document() -> None:
    assert resolve_prompt(E5, "text").full == "passage: text"
    assert resolve_prompt(MISTRAL, "text").full == "text"


def test_query_gets_the_default_task_instruction() -> None:
    assert resolve_prompt(MISTRAL, "q", "query").full == f"Instruct: {WEB}\nQuery: q"


def test_named_task_beats_the_default() -> None:
    prompt = resolve_prompt(MISTRAL, "q", "query", task="sts")
    assert prompt.full == "Instruct: Retrieve semantically similar text.\nQuery: q"
    assert prompt.prefix == "Instruct: Retrieve semantically similar text.\nQuery: "


def test_explicit_instruction_beats_the_task() -> None:
    prompt = resolve_prompt(MISTRAL, "q", "query", task="sts", instruction="Find recipes")
    assert prompt.full == "Instruct: Find recipes\nQuery: q"


def test_raw_role_sends_the_text_as_written() -> None:
    assert resolve_prompt(E5, "anything", "raw").full == "anything"


@pytest.mark.parametrize("role", ["query", "document"])
def test_a_prefix_the_caller_wrote_is_not_added_twice(role: str) -> None:
    prompt = resolve_prompt(E5, "query: how tall is the alps", role)
    assert prompt.full == "query: how tall is the alps"
    assert prompt.prefix == "query: "


def test_a_written_instruction_template_is_detected_and_split() -> None:
    text = "Instruct: my task\nQuery: what is up"
    prompt = resolve_prompt(MISTRAL, text, "query")
    assert (prompt.prefix, prompt.text) == ("Instruct: my task\nQuery: ", "what is up")


def test_documents_of_a_retrieval_task_get_no_instruction() -> None:
    assert resolve_prompt(MISTRAL, "doc", "document", task="scifact").full == "doc"
    assert resolve_prompt(E5, "doc", "document", task="scifact").full == "passage: doc"


@pytest.mark.parametrize(
    "name", ["e5-mistral-7b-instruct", "multilingual-e5-small", "bge-large-en-v1.5", "NV-Embed-v2"]
)
@pytest.mark.parametrize("task", ["sts", "banking77", "twenty_newsgroups", "summarization"])
def test_a_symmetric_task_gives_every_role_the_same_prompt(name: str, task: str) -> None:
    model = templates(name)
    as_query = resolve_prompt(model, "text", "query", task=task)
    assert resolve_prompt(model, "text", "document", task=task) == as_query
    assert resolve_prompt(model, "text", None, task=task) == as_query


def test_symmetric_prompts_follow_each_card() -> None:
    sts = "Retrieve semantically similar text."
    assert resolve_prompt(MISTRAL, "t", "document", task="sts").full == f"Instruct: {sts}\nQuery: t"
    assert resolve_prompt(E5, "t", "document", task="sts").full == "query: t"  # e5's authors: query: on both
    # bge-*-en-v1.5: the instruction is for retrieval queries only; similarity texts go as they are.
    assert resolve_prompt(templates("bge-large-en-v1.5"), "t", "query", task="sts").full == "t"


def test_instruction_kind_applies_a_free_text_instruction_to_every_text() -> None:
    prompt = resolve_prompt(MISTRAL, "t", "document", instruction="Group by topic", kind="symmetric")
    assert prompt.full == "Instruct: Group by topic\nQuery: t"
    assert resolve_prompt(MISTRAL, "t", "document", instruction="Find recipes").full == "t"  # retrieval default
    assert resolve_prompt(E5, "t", "document", kind="symmetric").full == "query: t"


def test_a_kind_that_contradicts_the_task_is_refused() -> None:
    with pytest.raises(RequestError, match="TASK 'scifact' is a retrieval task, but INSTRUCTION_KIND is 'symmetric'"):
        resolve_prompt(MISTRAL, "t", "document", task="scifact", kind="symmetric")
    # An instruction replaces the task's, so it may carry either kind.
    prompt = resolve_prompt(MISTRAL, "t", "document", task="scifact", instruction="Cluster", kind="symmetric")
    assert prompt.full == "Instruct: Cluster\nQuery: t"


def test_a_symmetric_request_to_an_instruction_model_must_name_its_task() -> None:
    with pytest.raises(RequestError, match=r"send a symmetric TASK .*sts.*or an INSTRUCTION"):
        resolve_prompt(MISTRAL, "t", "document", kind="symmetric")


def test_unknown_kind_lists_the_allowed_ones() -> None:
    with pytest.raises(RequestError, match="unknown INSTRUCTION_KIND 'sts'; allowed: retrieval, symmetric"):
        resolve_prompt(E5, "t", "query", kind="sts")


def test_unknown_role_lists_the_allowed_ones() -> None:
    with pytest.raises(RequestError, match="unknown ROLE 'passage'; allowed: query, document, raw"):
        resolve_prompt(E5, "t", "passage")


def test_unknown_task_lists_the_allowed_ones() -> None:
    with pytest.raises(RequestError, match=r"unknown TASK 'nope'; allowed: .*scifact.*web_search"):
        resolve_prompt(MISTRAL, "t", "query", task="nope")


def test_instruction_for_a_model_that_takes_none_is_refused() -> None:
    with pytest.raises(RequestError, match="takes no free-text instruction"):
        resolve_prompt(E5, "t", "query", instruction="Find recipes")
