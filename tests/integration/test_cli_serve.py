"""`instruct-embed serve` as a user runs it: ready, answers, and neither SIGTERM nor SIGKILL leaves a process behind;
a port in use is named with its holder."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from instruct_embed.server.process import die_with_owner, free_port, port_is_free

pytestmark = pytest.mark.integration


def _tritonservers_on(http_port: int) -> list[int]:
    """The live tritonserver processes started with this HTTP port (read from /proc: `ps` cuts long lines)."""
    from instruct_embed.server.stubs import is_alive

    found = []
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        ours = args and args[0].endswith(b"tritonserver") and f"--http-port={http_port}".encode() in args
        if ours and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# A `serve` started here dies with the test process (as serve's tritonserver dies with serve), so a killed test
# run leaves no server holding its ports.
_owned_by_this_test = functools.partial(die_with_owner, os.getpid())


def _serve(repository: Path, log_path: Path, *ports: int) -> subprocess.Popen[bytes]:
    http, grpc, metrics = ports
    command = [
        sys.executable, "-m", "instruct_embed.cli", "serve", "--model", "all-MiniLM-L6-v2", "--no-example",
        "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--repository", str(repository),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), preexec_fn=_owned_by_this_test
        )


def _wait_for(log_path: Path, line: str, process: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in log_path.read_text():
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, f"no {line!r} in {timeout_s:.0f} s"
        time.sleep(0.25)


def test_sigkill_of_serve_leaves_no_process_and_frees_ports(prepared_models: dict[str, Any], tmp_path: Path) -> None:
    from instruct_embed.server.stubs import is_alive, stubs_of

    repository = prepared_models["all-MiniLM-L6-v2"].repository
    ports = free_port(), free_port(), free_port()
    serve = _serve(repository, tmp_path / "serve.out", *ports)
    try:
        _wait_for(tmp_path / "serve.out", "serving; Ctrl-C to stop", serve)
        (triton,) = _tritonservers_on(ports[0])
        stubs = [s.pid for s in stubs_of(triton)]
        assert len(stubs) >= 2, "the preprocess and encoder stubs are running"
    finally:
        serve.kill()  # SIGKILL: no handler, no stop(), nothing of ours runs
        serve.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (any(is_alive(p) for p in [triton, *stubs]) or not _ports_free(ports)):
        time.sleep(0.1)
    assert not is_alive(triton) and _tritonservers_on(ports[0]) == [], "tritonserver outlived serve"
    assert not any(is_alive(p) for p in stubs), "a Python stub outlived serve"
    assert _ports_free(ports)


def _ports_free(ports: tuple[int, ...]) -> bool:
    return all(port_is_free("127.0.0.1", p) for p in ports)


def test_a_taken_port_is_refused_naming_its_holder(prepared_models: dict[str, Any], tmp_path: Path) -> None:
    import socket

    repository = prepared_models["all-MiniLM-L6-v2"].repository
    ports = free_port(), free_port(), free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[1]))
        holder.listen()
        serve = _serve(repository, tmp_path / "serve.out", *ports)
        code = serve.wait(timeout=60)
    printed = (tmp_path / "serve.out").read_text()
    assert code == 1 and "Traceback" not in printed, printed
    assert f"error: port {ports[1]} on 127.0.0.1 is taken by pid {os.getpid()} (" in printed
    assert "choose other ports (--http-port, --grpc-port, --metrics-port)" in printed


def test_serve_then_encode_then_sigterm(prepared_models: dict[str, Any], tmp_path: Path) -> None:
    repository = prepared_models["multilingual-e5-small"].repository
    http, grpc, metrics = free_port(), free_port(), free_port()
    command = [
        sys.executable, "-m", "instruct_embed.cli", "serve", "--model", "multilingual-e5-small",
        "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
        "--repository", str(repository),
    ]  # fmt: skip
    log = (tmp_path / "serve.out").open("w+")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), preexec_fn=_owned_by_this_test
    )
    try:
        deadline = time.monotonic() + 180
        while "serving; Ctrl-C to stop" not in Path(log.name).read_text():
            assert process.poll() is None, Path(log.name).read_text()
            assert time.monotonic() < deadline, "serve did not become ready"
            time.sleep(0.5)
        printed = Path(log.name).read_text()
        assert "query 'how much protein should a female eat' -> 384-d vector, norm 1.0000" in printed
        # The tests' repository pins fp32 (conftest): serve says what the encoder computes in, and why.
        assert "multilingual-e5-small: encoder fp32 (ONNX Runtime); pinned: cpu_precision fp32" in printed
        listed = subprocess.run(
            [sys.executable, "-m", "instruct_embed.cli", "models", "--url", f"127.0.0.1:{http}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        (model,) = [m for m in map(json.loads, listed.stdout.splitlines()) if m["name"] == "multilingual-e5-small"]
        assert (model["encoder_precision"], model["precision_choice"]) == (
            "fp32 (ONNX Runtime)",
            "pinned: cpu_precision fp32",
        )

        encoded = subprocess.run(
            [sys.executable, "-m", "instruct_embed.cli", "encode", "--url", f"127.0.0.1:{grpc}", "--protocol",
             "grpc", "--query", "how tall is mont blanc", "--document", "Mont Blanc is 4,806 m high."],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        records = [json.loads(line) for line in encoded.stdout.splitlines()]
        assert [r["role"] for r in records] == ["query", "document"]
        assert all(len(r["embedding"]) == 384 and r["tokens"] > 0 for r in records)
        long = " ".join(f"Sentence {i} of a long report on glaciers." for i in range(150))
        chunked = subprocess.run(
            [sys.executable, "-m", "instruct_embed.cli", "encode", "--url", f"127.0.0.1:{grpc}", "--protocol",
             "grpc", "--output-type", "ubinary", "--chunk", "windows", "--chunk-overlap", "16", long],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        windows = [json.loads(line) for line in chunked.stdout.splitlines()]
        assert len(windows) > 1 and [w["window"] for w in windows] == list(range(len(windows)))
        assert all(len(w["embedding"]) == 48 and all(0 <= b <= 255 for b in w["embedding"]) for w in windows)
        assert windows[0]["char_span"][0] == 0 and windows[-1]["char_span"][1] == len(long)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=90)
    assert code == 0, Path(log.name).read_text()
    assert "tritonserver stopped" in Path(log.name).read_text()
    assert _tritonservers_on(http) == []
    assert all(port_is_free("127.0.0.1", p) for p in (http, grpc, metrics))
