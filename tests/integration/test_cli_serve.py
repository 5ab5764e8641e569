"""`instruct-embed serve` as a user runs it: ready, answers, and SIGTERM leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from instruct_embed.server.process import free_port, port_is_free

pytestmark = pytest.mark.integration


def _tritonservers_on(http_port: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if "tritonserver" in line and f"--http-port={http_port}" in line]


def test_serve_then_encode_then_sigterm(prepared_models: dict[str, Any], tmp_path: Path) -> None:
    repository = prepared_models["multilingual-e5-small"].repository
    http, grpc, metrics = free_port(), free_port(), free_port()
    command = [
        sys.executable, "-m", "instruct_embed.cli", "serve", "--model", "multilingual-e5-small",
        "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--repository", str(repository),
    ]  # fmt: skip
    log = (tmp_path / "serve.out").open("w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 180
        while "serving; Ctrl-C to stop" not in Path(log.name).read_text():
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.5)
        printed = Path(log.name).read_text()
        assert "query 'how much protein should a female eat' -> 384-d vector, norm 1.0000" in printed

        encoded = subprocess.run(
            [sys.executable, "-m", "instruct_embed.cli", "encode", "--url", f"127.0.0.1:{grpc}", "--protocol",
             "grpc", "--query", "how tall is mont blanc", "--document", "Mont Blanc is 4,806 m high."],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        records = [json.loads(line) for line in encoded.stdout.splitlines()]
        assert [r["role"] for r in records] == ["query", "document"]
        assert all(len(r["embedding"]) == 384 and r["tokens"] > 0 for r in records)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=90)
    assert code == 0, Path(log.name).read_text()
    assert "tritonserver stopped" in Path(log.name).read_text()
    assert _tritonservers_on(http) == []
    assert all(port_is_free("127.0.0.1", p) for p in (http, grpc, metrics))
