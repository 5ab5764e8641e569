"""`instruct-embed encode --instruction-kind` reaches the SDK; `instruct-embed models` lists task kinds and the
symmetric template, from a server and from the catalog, as JSON lines."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from instruct_embed import cli
from instruct_embed.client import ServedModel
from instruct_embed.client import cli as client_cli


class FakeClient:
    """Stands in for EmbedClient inside the commands."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, url: str | None = None, protocol: str = "http") -> None:
        pass

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def encode_with_counts(self, model: str, texts: list[str], **options: Any) -> tuple[np.ndarray, np.ndarray]:
        FakeClient.calls.append({"model": model, "texts": texts, **options})
        return np.zeros((len(texts), 2), dtype=np.float32), np.ones(len(texts), dtype=np.int32)

    def models(self) -> list[ServedModel]:
        return [
            ServedModel(
                name="e5",
                dim=384,
                max_batch_size=64,
                query_template="query: {text}",
                document_template="passage: {text}",
                tasks={"sts": "Retrieve semantically similar text.", "scifact": "Given a claim, retrieve documents"},
                default_task=None,
                max_length=512,
                task_kinds={"sts": "symmetric"},  # scifact missing: a retrieval task
            )
        ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    FakeClient.calls = []
    monkeypatch.setattr(client_cli, "EmbedClient", FakeClient)
    return FakeClient


@pytest.mark.parametrize("kind", ["retrieval", "symmetric"])
def test_encode_passes_the_instruction_kind(
    fake: type[FakeClient], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["encode", "--model", "e5", "--query", "q", "--document", "d", "--instruction-kind", kind])
    assert code == 0
    assert [(c["role"], c["instruction_kind"], c["task"]) for c in fake.calls] == [
        ("query", kind, None),
        ("document", kind, None),
    ]
    assert [json.loads(line)["role"] for line in capsys.readouterr().out.splitlines()] == ["query", "document"]


def test_encode_without_the_flag_sends_no_kind(fake: type[FakeClient]) -> None:
    assert cli.main(["encode", "--model", "e5", "--task", "sts", "a text"]) == 0
    assert [(c["instruction_kind"], c["task"]) for c in fake.calls] == [(None, "sts")]


def test_an_unknown_kind_is_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["encode", "--instruction-kind", "similarity", "x"])
    assert raised.value.code == 2
    assert "choose from 'retrieval', 'symmetric'" in capsys.readouterr().err


def test_models_from_a_server_list_each_tasks_kind(fake: type[FakeClient], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models"]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["symmetric_template"] == "query: {text}"  # the server sent none: the query template
    assert record["tasks"] == {
        "scifact": {"instruction": "Given a claim, retrieve documents", "kind": "retrieval"},
        "sts": {"instruction": "Retrieve semantically similar text.", "kind": "symmetric"},
    }


def test_models_from_the_catalog_list_each_tasks_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from instruct_embed.catalog import get_spec, model_names

    assert cli.main(["models", "--catalog"]) == 0
    records = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(records) == set(model_names())
    for name, record in records.items():
        spec = get_spec(name)
        assert record["symmetric_template"] == spec.symmetric_template
        assert record["tasks"] == {
            task: {"instruction": t.instruction, "kind": t.kind.value} for task, t in spec.tasks.items()
        }
        assert list(record["tasks"]) == sorted(spec.tasks)
    e5 = records["multilingual-e5-small"]
    assert e5["symmetric_template"] == "query: {text}"
    assert e5["tasks"]["sts"]["kind"] == "symmetric" and e5["tasks"]["scifact"]["kind"] == "retrieval"
    assert records["bge-large-en-v1.5"]["symmetric_template"] == "{text}"
    assert records["Qwen3-Embedding-0.6B"]["matryoshka_dims"] == [32, 64, 128, 256, 512, 768, 1024]
    assert records["multilingual-e5-small"]["matryoshka_dims"] == []


def test_encode_passes_dimensions(fake: type[FakeClient]) -> None:
    assert cli.main(["encode", "--model", "e5", "--dimensions", "256", "a text"]) == 0
    assert cli.main(["encode", "--model", "e5", "another"]) == 0
    assert [c["dimensions"] for c in fake.calls] == [256, None]
