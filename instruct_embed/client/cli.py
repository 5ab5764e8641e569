"""`instruct-embed encode` (texts from arguments, a file, JSONL or stdin -> JSONL) and `instruct-embed models`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from instruct_embed.runtime.contract import (
    CHUNK_MODES,
    DEFAULT_ROLE,
    DEFAULT_TRUNCATE,
    EMBEDDING_TYPES,
    FLOAT,
    INSTRUCTION_KINDS,
    ROLES,
    TRUNCATE_MODES,
    WINDOWS,
)

from .errors import EmbedError
from .request import ServedModel
from .sync_client import EmbedClient

DEFAULT_MODEL = "multilingual-e5-small"


@dataclass(frozen=True)
class Entry:
    text: str
    role: str
    id: str | None = None


def register_client_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="embed texts through a running server; writes one JSON line per text")
    p.add_argument("texts", nargs="*", help="texts to embed with --role")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--query", action="append", default=[], help="a query text (repeatable)")
    p.add_argument("--document", action="append", default=[], help="a document text (repeatable)")
    p.add_argument("--input", help="a file of texts, one per line, or '-' for stdin; .jsonl: objects with 'text'")
    p.add_argument("--jsonl", action="store_true", help="read --input as JSONL ({'text', optional 'role', 'id'})")
    p.add_argument("--role", default=DEFAULT_ROLE, choices=ROLES, help="role of positional and --input texts")
    p.add_argument(
        "--task",
        help="a named task of the model (a retrieval task's instruction goes on queries, a symmetric one's "
        "template on every text)",
    )
    p.add_argument("--instruction", help="free-text instruction; overrides --task")
    p.add_argument(
        "--instruction-kind",
        choices=INSTRUCTION_KINDS,
        help="retrieval: each role its own template; symmetric: every text the model's symmetric template, whatever "
        "its role (default: the task's kind, else retrieval)",
    )
    p.add_argument("--truncate", default=DEFAULT_TRUNCATE, choices=TRUNCATE_MODES)
    p.add_argument(
        "--dimensions", type=int, help="a Matryoshka size of the model (`models` lists them): the first n, renormalised"
    )
    p.add_argument(
        "--output-type",
        default=FLOAT,
        choices=EMBEDDING_TYPES,
        help="the storage type the server returns: int8 / uint8 over the model's calibrated ranges, binary / ubinary "
        "its sign bits packed 8 per byte (integers in the JSON)",
    )
    p.add_argument(
        "--chunk",
        choices=CHUNK_MODES,
        help="a text over the model's limit as token windows instead of cut: mean writes one line per text (the "
        "windows' mean, renormalised), windows one line per window with its token and character spans",
    )
    p.add_argument("--chunk-overlap", type=int, help="text tokens neighbouring windows share (default 32)")
    p.add_argument("--output", type=Path, help="write JSONL here instead of stdout")
    _connection_flags(p)
    p.set_defaults(handler=cmd_encode)

    m = sub.add_parser("models", help="list the models a running server serves (tasks, templates, dims)")
    m.add_argument("--catalog", action="store_true", help="list the local catalog instead of asking a server")
    _connection_flags(m)
    m.set_defaults(handler=cmd_models)


def _connection_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        help="server address host:port (default 127.0.0.1:8000 for http, :8001 for grpc); several "
        "replicas: a:8001,b:8001 or dns:///service:8001, used in turn",
    )
    p.add_argument("--protocol", default="http", choices=["http", "grpc"])


def read_entries(args: argparse.Namespace, stdin: IO[str]) -> Iterator[Entry]:
    for text in args.query:
        yield Entry(text, "query")
    for text in args.document:
        yield Entry(text, "document")
    for text in args.texts:
        yield Entry(text, args.role)
    if args.input:
        stream = stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
        jsonl = args.jsonl or args.input.endswith(".jsonl")
        with stream:
            for number, line in enumerate(stream, 1):
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                if not jsonl:
                    yield Entry(line, args.role)
                    continue
                record = json.loads(line)
                if "text" not in record:
                    raise ValueError(f"{args.input}:{number}: a JSONL record needs a 'text' field")
                yield Entry(str(record["text"]), str(record.get("role", args.role)), record.get("id"))


def cmd_encode(args: argparse.Namespace) -> int:
    try:
        entries = list(read_entries(args, sys.stdin))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not entries:
        print("nothing to encode: pass texts, --query, --document or --input", file=sys.stderr)
        return 2
    out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        with EmbedClient(args.url, args.protocol) as client:
            for role in dict.fromkeys(e.role for e in entries):
                group = [(i, e) for i, e in enumerate(entries) if e.role == role]
                options = dict(role=role, task=args.task, instruction=args.instruction,
                               instruction_kind=args.instruction_kind, truncate=args.truncate,
                               dimensions=args.dimensions, output_type=args.output_type,
                               chunk_overlap=args.chunk_overlap)  # fmt: skip
                texts = [e.text for _, e in group]
                if args.chunk == WINDOWS:
                    per_text = client.encode_windows(args.model, texts, **options)
                    for (index, entry), windows in zip(group, per_text, strict=True):
                        for k in range(len(windows)):
                            record = {"index": index, "id": entry.id, "role": role, "window": k,
                                      "tokens": int(windows.token_counts[k]), "token_span": windows.tokens[k].tolist(),
                                      "char_span": windows.chars[k].tolist(),
                                      "embedding": windows.vectors[k].tolist()}  # fmt: skip
                            out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    continue
                vectors, counts = client.encode_with_counts(args.model, texts, chunk=args.chunk, **options)
                for (index, entry), vector, count in zip(group, vectors, counts, strict=True):
                    record = {"index": index, "id": entry.id, "role": role, "text": entry.text,
                              "tokens": int(count), "embedding": vector.tolist()}  # fmt: skip
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    except EmbedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if args.output:
            out.close()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    if args.catalog:
        from instruct_embed.catalog import get_spec, model_names

        for name in model_names():
            spec = get_spec(name)
            tasks = {task: {"instruction": spec.tasks[task].instruction, "kind": str(spec.tasks[task].kind)}
                     for task in sorted(spec.tasks)}  # fmt: skip
            print(json.dumps({"name": name, "dim": spec.dim, "matryoshka_dims": list(spec.matryoshka_dims),
                              "pooling": spec.pooling.value,
                              "query_template": spec.query_template, "document_template": spec.document_template,
                              "symmetric_template": spec.symmetric_template, "default_task": spec.default_task,
                              "tasks": tasks, "license": spec.license}))  # fmt: skip
        return 0
    try:
        with EmbedClient(args.url, args.protocol) as client:
            for model in client.models():
                print(json.dumps({"name": model.name, "dim": model.dim,
                                  "matryoshka_dims": list(model.matryoshka_dims),
                                  "max_batch_size": model.max_batch_size,
                                  "query_template": model.query_template,
                                  "document_template": model.document_template,
                                  "symmetric_template": model.symmetric_template,
                                  "default_task": model.default_task, "tasks": served_tasks(model),
                                  "embedding_types": list(model.embedding_types),
                                  "encoder_precision": model.encoder_precision,
                                  "precision_choice": model.precision_choice}))  # fmt: skip
    except EmbedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def served_tasks(model: ServedModel) -> dict[str, dict[str, str]]:
    """Each task of a served model with its instruction and kind, by name (the shape `--catalog` prints)."""
    return {
        name: {"instruction": model.tasks[name], "kind": model.task_kinds.get(name, "retrieval")}
        for name in sorted(model.tasks)
    }
