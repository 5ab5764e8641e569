"""BEIR-format retrieval data: locate it, verify its checksums, load it, and cut deterministic subsets."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "INSTRUCT_EMBED_SCIFACT"
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip"
# The project's copy, as listed in shared/data/scifact/SOURCE.md (a unit test keeps the two equal). Pinned in code, not
# read from the data folder, because a folder cannot vouch for itself.
SCIFACT_SHA256 = {
    "corpus.jsonl": "ae39e2b331413acd6c58c262e3d2c1bf2b4afb5407ccfa6d06dd3f06e5da1f28",
    "queries.jsonl": "d3161c84e70775b287de2665f3ef4e45abfb64ba39f5fd80465deb17745b7b22",
    "qrels.tsv": "68c0ac63f1c24b9e8ce497649694f09b2d0850bab7ec2b103cc66996f5f8b3a3",
}
HOW_TO_GET = (
    f"get SciFact in BEIR form from {BEIR_URL} (unzip; the test split is qrels/test.tsv and the queries it names), "
    "or use the project's copy in <repo>/../shared/data/scifact; see benchmarks/scifact.md. "
    f"Point to it with --data DIR or ${ENV_VAR}"
)


class DataError(RuntimeError):
    """The data is missing, altered or malformed; the message says how to get the right files."""


@dataclass(frozen=True)
class RetrievalSet:
    """One BEIR test split: query id -> text, document id -> text, query id -> {document id: relevance}."""

    name: str
    queries: Mapping[str, str]
    corpus: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]

    def describe(self) -> str:
        judgements = sum(len(v) for v in self.qrels.values())
        return f"{self.name}: {len(self.queries)} queries, {len(self.corpus)} documents, {judgements} judgements"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def find_data_dir(explicit: Path | None = None) -> Path:
    """`explicit` (--data), else $INSTRUCT_EMBED_SCIFACT, else <repo>/../shared/data/scifact.

    Raises DataError, saying how to get the data, when the folder has no corpus.jsonl.
    """
    if explicit is not None:
        source, folder = "--data", Path(explicit)
    elif os.environ.get(ENV_VAR):
        source, folder = f"${ENV_VAR}", Path(os.environ[ENV_VAR])
    else:
        source, folder = "default", repo_root().parent / "shared" / "data" / "scifact"
    folder = folder.expanduser()
    if not (folder / "corpus.jsonl").is_file():
        raise DataError(f"no SciFact data at {folder} ({source}): {HOW_TO_GET}")
    return folder.resolve()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(folder: Path, expected: Mapping[str, str] = SCIFACT_SHA256) -> None:
    """Raises DataError naming every file that is missing or whose sha256 differs."""
    problems = []
    for name, want in expected.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif (got := sha256_file(path)) != want:
            problems.append(f"{name} has sha256 {got}, expected {want}")
    if problems:
        raise DataError(
            f"SciFact at {folder} is not the pinned copy: {'; '.join(problems)}. {HOW_TO_GET}. "
            "A raw BEIR download keeps train and test queries in one queries.jsonl and the test judgements in "
            "qrels/test.tsv: pass --no-verify to use it as it is"
        )


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(f"{path}:{number}: not JSON ({error})") from error


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: `query-id<TAB>corpus-id<TAB>score` with a header line."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        if header[:2] != ["query-id", "corpus-id"]:
            raise DataError(f"{path}: expected the BEIR header 'query-id<TAB>corpus-id<TAB>score', got {header}")
        for number, line in enumerate(handle, 2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise DataError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    return qrels


def document_text(doc: Mapping[str, str]) -> str:
    """Title and text joined by one space, stripped: what MTEB embeds for a BEIR document."""
    return f"{doc.get('title') or ''} {doc.get('text') or ''}".strip()


def load_beir(folder: Path, name: str) -> RetrievalSet:
    """Reads corpus.jsonl, queries.jsonl and qrels.tsv (or BEIR's qrels/test.tsv); keeps only judged queries."""
    qrels_path = folder / "qrels.tsv"
    if not qrels_path.is_file():
        qrels_path = folder / "qrels" / "test.tsv"
    if not qrels_path.is_file():
        raise DataError(f"{folder}: neither qrels.tsv nor qrels/test.tsv. {HOW_TO_GET}")
    qrels = read_qrels(qrels_path)
    corpus = {str(doc["_id"]): document_text(doc) for doc in _jsonl(folder / "corpus.jsonl")}
    queries = {str(q["_id"]): q["text"] for q in _jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels}
    missing_queries = sorted(set(qrels) - set(queries))
    missing_docs = sorted({d for judged in qrels.values() for d in judged} - set(corpus))
    if missing_queries or missing_docs:
        raise DataError(
            f"{folder}: judgements name {len(missing_queries)} unknown queries (e.g. {missing_queries[:3]}) and "
            f"{len(missing_docs)} unknown documents (e.g. {missing_docs[:3]})"
        )
    return RetrievalSet(name=name, queries=queries, corpus=corpus, qrels=qrels)


def load_scifact(data_dir: Path | None = None, verify: bool = True) -> RetrievalSet:
    """The SciFact test split (300 queries, 5,183 documents, 339 judgements); raises DataError."""
    folder = find_data_dir(data_dir)
    if verify:
        verify_checksums(folder)
    return load_beir(folder, "scifact")


def _fixed_order(ids: Iterable[str], seed: int) -> list[str]:
    # Ordered by a hash of (seed, id): stable across Python and numpy versions, unlike a seeded shuffle.
    return sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())


def limit(
    data: RetrievalSet, max_docs: int | None = None, max_queries: int | None = None, seed: int = 0
) -> RetrievalSet:
    """A deterministic subset: queries in a fixed pseudo-random order, kept while their judged documents fit in
    `max_docs`, up to `max_queries`; every judged document of a kept query stays; fixed distractors (documents not
    judged for a kept query, in a fixed order) fill the corpus up to `max_docs`. None keeps everything."""
    if max_docs is not None and max_docs < 1:
        raise ValueError(f"max_docs must be positive, got {max_docs}")
    kept: list[str] = []
    judged: set[str] = set()
    for query_id in _fixed_order(data.queries, seed):
        if max_queries is not None and len(kept) >= max_queries:
            break
        wanted = judged | set(data.qrels[query_id])
        if max_docs is not None and len(wanted) > max_docs:
            continue
        kept.append(query_id)
        judged = wanted
    if not kept:
        raise ValueError(f"no query fits with its judged documents in {max_docs} documents")
    room = None if max_docs is None else max_docs - len(judged)
    distractors = _fixed_order((d for d in data.corpus if d not in judged), seed)[:room]
    doc_ids = judged | set(distractors)
    return RetrievalSet(
        name=f"{data.name}[{len(kept)}q,{len(doc_ids)}d]",
        queries={q: data.queries[q] for q in sorted(kept)},
        corpus={d: t for d, t in data.corpus.items() if d in doc_ids},
        qrels={q: dict(data.qrels[q]) for q in sorted(kept)},
    )
