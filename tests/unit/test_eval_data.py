"""SciFact loading: where the data is found, its checksums, the BEIR reading rules and the fixed subsets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from instruct_embed.cli import build_parser, main
from instruct_embed.evaluation.data import (
    BEIR_URL,
    ENV_VAR,
    SCIFACT_SHA256,
    DataError,
    find_data_dir,
    limit,
    load_beir,
    load_scifact,
    repo_root,
    verify_checksums,
)

SHARED = repo_root().parent / "shared" / "data" / "scifact"
needs_data = pytest.mark.skipif(
    not (SHARED / "corpus.jsonl").is_file(), reason=f"SciFact not at {SHARED} (CI copies shared/ beside the clone)"
)


def write_beir(folder: Path, qrels_name: str = "qrels.tsv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": "d1", "title": "Title one.", "text": "Body one."}, {"_id": "d2", "title": "", "text": " Body two "}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "first"}, {"_id": "q9", "text": "a train query, not judged here"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / qrels_name).parent.mkdir(parents=True, exist_ok=True)
    (folder / qrels_name).write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    return folder


def test_beir_reading_rules(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "beir"), "toy")
    assert data.corpus == {"d1": "Title one. Body one.", "d2": "Body two"}
    assert data.queries == {"q1": "first"}  # only judged queries, as BEIR loads a split
    assert data.qrels == {"q1": {"d2": 1}}


def test_beir_download_layout_is_read(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "beir", "qrels/test.tsv"), "toy")
    assert data.qrels == {"q1": {"d2": 1}}


def test_judgement_of_an_unknown_document_is_an_error(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnope\t1\n")
    with pytest.raises(DataError, match="1 unknown documents"):
        load_beir(folder, "toy")


def test_missing_data_names_the_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        find_data_dir(tmp_path / "absent")
    assert BEIR_URL in str(error.value) and "--data" in str(error.value)


def test_environment_variable_is_used_when_no_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_beir(tmp_path / "from-env")
    monkeypatch.setenv(ENV_VAR, str(folder))
    assert find_data_dir() == folder.resolve()
    other = write_beir(tmp_path / "from-flag")
    assert find_data_dir(other) == other.resolve()


def test_altered_file_fails_the_checksum(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    with pytest.raises(DataError) as error:
        verify_checksums(folder)
    message = str(error.value)
    assert "corpus.jsonl has sha256" in message and BEIR_URL in message and "--no-verify" in message


def test_cli_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "scifact", "--data", str(tmp_path), "--no-progress"]) == 2
    assert BEIR_URL in capsys.readouterr().err


def test_cli_parses_into_a_handler() -> None:
    args = build_parser().parse_args(["eval", "scifact", "--variant", "swapped", "--limit-docs", "500", "--json"])
    assert callable(args.handler) and args.variant == "swapped" and args.limit_docs == 500 and args.json


@needs_data
def test_pinned_checksums_are_those_of_source_md() -> None:
    listed = dict(re.findall(r"^- (\S+)\s+([0-9a-f]{64})", (SHARED / "SOURCE.md").read_text(), re.MULTILINE))
    assert {name: listed[name] for name in SCIFACT_SHA256} == SCIFACT_SHA256


@needs_data
def test_scifact_test_split() -> None:
    data = load_scifact(SHARED)
    assert (len(data.queries), len(data.corpus), sum(len(v) for v in data.qrels.values())) == (300, 5183, 339)
    assert data.corpus["4983"].startswith("Microstructural development of human newborn cerebral white matter")
    assert "magnetic resonance imaging. Alterations of the architecture" in data.corpus["4983"]  # title, space, text


@needs_data
def test_limit_is_deterministic_and_keeps_the_judged_documents() -> None:
    data = load_scifact(SHARED, verify=False)
    subset = limit(data, max_docs=450, max_queries=40)
    assert len(subset.queries) == 40 and len(subset.corpus) == 450
    assert all(doc in subset.corpus for judged in subset.qrels.values() for doc in judged)
    again = limit(data, max_docs=450, max_queries=40)
    assert list(again.queries) == list(subset.queries) and list(again.corpus) == list(subset.corpus)
    small = limit(data, max_docs=100)
    assert len(small.corpus) == 100 and 0 < len(small.queries) < 300
    assert len(limit(data, max_docs=1000).queries) == 300
