"""benchmarks/gateway_overhead.py's pure parts: arguments, request bodies, summaries, the table and its markers."""

from __future__ import annotations

import json

import pytest

from benchmarks.gateway_overhead import (
    BEGIN,
    END,
    Phase,
    gateway_body,
    gateway_command,
    parse_args,
    ratio,
    raw_body,
    replace_between_markers,
    summarise,
    table,
)


def test_defaults_and_options() -> None:
    args = parse_args([])
    assert (args.model, args.repeats, args.seconds, args.concurrency) == ("all-MiniLM-L6-v2", 3, None, 16)
    args = parse_args(["--model", "multilingual-e5-small", "--repeats", "5", "--seconds", "8", "--no-readme"])
    assert (args.model, args.repeats, args.seconds, args.no_readme) == ("multilingual-e5-small", 5, 8.0, True)


@pytest.mark.parametrize("argv", [["--repeats", "0"], ["--seconds", "0"], ["--concurrency", "0"]])
def test_nonsense_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_the_raw_request_is_kserve_json_for_one_query() -> None:
    body = json.loads(raw_body("m", "how tall is mont blanc"))
    inputs = {i["name"]: i for i in body["inputs"]}
    assert inputs["TEXT"] == {"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["how tall is mont blanc"]}
    assert inputs["ROLE"]["data"] == ["query"]
    assert [o["name"] for o in body["outputs"]] == ["EMBEDDING", "TOKEN_COUNT"]


def test_the_gateway_request_is_one_openai_query() -> None:
    body = json.loads(gateway_body("m", "x"))
    assert body == {"model": "m", "input": "x", "input_type": "query", "encoding_format": "float"}


def test_the_gateway_is_started_with_its_own_cli() -> None:
    command = gateway_command("127.0.0.1:8001", 9000, ["--workers", "2"])
    assert command[command.index("gateway") :] == [
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        "9000",
        "--triton",
        "127.0.0.1:8001",
        "--workers",
        "2",
    ]


def phase(system: str, requests: int, seconds: float, gateway_cpu: float = 0.0) -> Phase:
    return Phase(system, requests, seconds, 80.0, 150.0, {"gateway": gateway_cpu, "triton": 8.0, "generator": 0.3})


def test_medians_ratio_and_table() -> None:
    phases = [
        phase("raw", 300, 2.0),
        phase("gateway", 300, 2.5, 1.0),
        phase("gateway", 300, 2.0, 2.0),
        phase("raw", 300, 1.5),
        phase("raw", 300, 3.0),
        phase("gateway", 300, 3.0, 3.0),
    ]
    summaries = summarise(phases)
    assert summaries["raw"].texts_per_s == (150.0, 200.0, 100.0)
    assert summaries["raw"].median == 150.0 and summaries["gateway"].median == 120.0
    assert summaries["gateway"].cpu_ms["gateway"] == 2.0
    assert ratio(summaries) == pytest.approx(0.8)
    text = table(summaries)
    assert "| raw Triton HTTP (KServe v2 JSON) | 150.0 | 150.0, 200.0, 100.0 | 80.0 | 150.0 |" in text
    assert "| gateway (OpenAI /v1/embeddings) | 120.0 |" in text and "2.00 / 8.00 / 0.30" in text
    assert "**0.800** (below the 0.9 target)" in text
    assert "raw 8.30 / gateway 10.30) = **0.806**" in text  # CPU per request on each path: 8 + 0.3 vs 8 + 2 + 0.3


def test_the_table_replaces_what_lies_between_the_markers() -> None:
    readme = f"# Title\n\nbefore\n{BEGIN}\nold table\n{END}\nafter\n"
    updated = replace_between_markers(readme, "new table")
    assert updated == f"# Title\n\nbefore\n{BEGIN}\nnew table\n{END}\nafter\n"
    assert replace_between_markers(updated, "newer") == f"# Title\n\nbefore\n{BEGIN}\nnewer\n{END}\nafter\n"


def test_missing_markers_are_appended() -> None:
    assert replace_between_markers("# T\n", "table") == f"# T\n\n{BEGIN}\ntable\n{END}\n"
