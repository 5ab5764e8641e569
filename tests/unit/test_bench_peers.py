"""The infinity-emb peer of the side-by-side run: its command line, its responses, its absence, its ratio rows.

A fake server (http.server) stands in for infinity-emb; nothing here times anything.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from benchmarks.peers import InfinityServer, PeerError, infinity_missing, parse_embeddings
from benchmarks.ratios import Measurement, ratio_rows


def _server(tmp_path: Path, model: str = "multilingual-e5-small", port: int = 0) -> InfinityServer:
    return InfinityServer(model, tmp_path / "hf", threads=3, venv=tmp_path / "venv", port=port or 1)


def test_the_peer_starts_with_the_torch_engine_on_cpu_and_our_thread_count(tmp_path: Path) -> None:
    peer = InfinityServer("all-MiniLM-L6-v2", tmp_path / "hf", threads=3, venv=tmp_path / "venv", port=4321)
    argv = peer.command()
    assert argv[0] == str(tmp_path / "venv" / "bin" / "infinity_emb") and argv[1] == "v2"
    joined = " ".join(argv)
    for part in (
        f"--model-id {(tmp_path / 'hf').resolve()}",
        "--served-model-name all-MiniLM-L6-v2",
        "--engine torch",
        "--no-bettertransformer",
        "--device cpu",
        "--batch-size 32",
        "--host 127.0.0.1",
        "--port 4321",
    ):
        assert part in joined
    assert "optimum" not in joined  # its optimum engine does not start with optimum 2.x
    env = peer.environment()
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert env["HF_HUB_OFFLINE"] == "1" and env["DO_NOT_TRACK"] == "1"
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env
    assert env["PATH"].split(":")[0] == str(tmp_path / "venv" / "bin")
    assert "infinity-emb" in peer.label and "3 threads" in peer.label


def _item(index: int, vector: list[float], encoded: bool) -> dict[str, object]:
    embedding: object = (
        base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode() if encoded else list(vector)
    )
    return {"object": "embedding", "index": index, "embedding": embedding}


@pytest.mark.parametrize("encoded", [False, True], ids=["float", "base64"])
def test_a_response_comes_back_in_input_order_and_normalised(encoded: bool) -> None:
    body = json.dumps(
        {"data": [_item(2, [0, 0, 5], encoded), _item(0, [3, 4, 0], encoded), _item(1, [0, 2, 0], encoded)]}
    )
    vectors = parse_embeddings(body, 3)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 3)
    np.testing.assert_allclose(vectors, [[0.6, 0.8, 0], [0, 1, 0], [0, 0, 1]], atol=1e-7)


def test_a_response_with_missing_or_repeated_rows_is_refused() -> None:
    with pytest.raises(PeerError, match="asked for 2"):
        parse_embeddings(json.dumps({"data": [_item(0, [1.0], False)]}), 2)
    with pytest.raises(PeerError, match="repeated"):
        parse_embeddings(json.dumps({"data": [_item(0, [1.0], False), _item(0, [1.0], False)]}), 2)


class _FakeInfinity(BaseHTTPRequestHandler):
    """POST /embeddings: each text's vector is [len(text), 1] (unnormalised), rows shuffled (reversed)."""

    received: ClassVar[list[dict]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            self.received.append(payload)
        data = [
            _item(i, [float(len(t)), 1.0], payload.get("encoding_format") == "base64")
            for i, t in enumerate(payload["input"])
        ]
        body = json.dumps({"object": "list", "data": data[::-1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_infinity() -> Iterator[int]:
    _FakeInfinity.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeInfinity)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _expected(texts: list[str]) -> np.ndarray:
    raw = np.array([[len(t), 1.0] for t in texts], dtype=np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_bulk_sends_32_prompted_documents_per_request_and_keeps_their_order(tmp_path: Path, fake_infinity: int) -> None:
    peer = _server(tmp_path, port=fake_infinity)
    documents = ["x" * (i % 17 + 1) for i in range(70)]
    seconds, vectors = peer.bulk(documents, batch=32, in_flight=3)
    assert seconds > 0 and vectors.shape == (70, 2)
    prompted = [f"passage: {d}" for d in documents]  # multilingual-e5-small's card: "passage: " for documents
    np.testing.assert_allclose(vectors, _expected(prompted), rtol=1e-6)
    sizes = sorted(len(p["input"]) for p in _FakeInfinity.received)
    assert sizes == [6, 32, 32]
    assert {p["model"] for p in _FakeInfinity.received} == {"multilingual-e5-small"}
    assert sorted(t for p in _FakeInfinity.received for t in p["input"]) == sorted(prompted)


def test_online_sends_one_prompted_query_per_request(tmp_path: Path, fake_infinity: int) -> None:
    peer = _server(tmp_path, port=fake_infinity)
    queries = ["a" * (i + 1) for i in range(40)]
    seconds, vectors = peer.online(queries, concurrency=4)
    np.testing.assert_allclose(vectors, _expected([f"query: {q}" for q in queries]), rtol=1e-6)
    assert seconds > 0 and len(peer.last_latencies_ms) == 40
    assert {len(p["input"]) for p in _FakeInfinity.received} == {1}
    assert len(_FakeInfinity.received) == 40 + 16  # the timed pass and a warm-up of 4 x concurrency


def test_a_peer_without_its_environment_is_skipped_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from benchmarks.side_by_side import infinity_peer, parse_args, peer_versions

    absent = tmp_path / "no-venv"
    assert "make bench-peers" in (infinity_missing(absent) or "")
    with pytest.raises(PeerError, match="missing"):
        InfinityServer("all-MiniLM-L6-v2", tmp_path, 2, venv=absent, port=1).start()
    args = parse_args(["--infinity-venv", str(absent)])
    assert infinity_peer(args, "all-MiniLM-L6-v2", tmp_path) is None
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "infinity-emb is not measured" in said[0] and str(absent) in said[0]
    assert peer_versions(args) == {}
    (absent / "bin").mkdir(parents=True)
    (absent / "bin" / "infinity_emb").write_text("#!/bin/sh\n")
    assert infinity_peer(args, "all-MiniLM-L6-v2", tmp_path) is not None
    left_out = parse_args(["--infinity-venv", str(absent), "--no-infinity"])
    assert infinity_peer(left_out, "all-MiniLM-L6-v2", tmp_path) is None
    assert "--no-infinity" in capsys.readouterr().out


def test_a_peer_that_ends_at_start_says_why(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin" / "infinity_emb"
    script.write_text("#!/bin/sh\necho 'no such model' >&2\nexit 3\n")
    script.chmod(0o755)
    peer = InfinityServer("all-MiniLM-L6-v2", tmp_path, 2, venv=venv, log_file=tmp_path / "peer.log")
    with pytest.raises(PeerError, match="ended at start") as raised:
        peer.start()
    assert "no such model" in str(raised.value)
    assert peer.process is None


def _m(scenario: str, system: str, value: float) -> Measurement:
    return Measurement("m", scenario, system, "texts/s", (value,))


def test_the_peer_ratio_rows() -> None:
    found = [
        _m("online", "server", 300.0),
        _m("online", "infinity-emb", 100.0),
        _m("bulk", "server", 90.0),
        _m("bulk", "sentence-transformers", 30.0),
        _m("bulk", "infinity-emb", 45.0),
    ]
    rows = {r.target: r for r in ratio_rows(found)}
    online = rows["online queries: server / infinity-emb"]
    assert online.value == pytest.approx(3.0) and online.minimum == 2.0 and online.met
    best = rows["bulk: server / best peer (infinity-emb, sentence-transformers)"]
    assert best.value == pytest.approx(2.0) and best.minimum == 1.5 and best.met
    assert best.detail == "90 / 45 texts/s (infinity-emb)"
    slower = [_m("bulk", "server", 90.0), _m("bulk", "sentence-transformers", 70.0), _m("bulk", "infinity-emb", 45.0)]
    (row,) = [r for r in ratio_rows(slower) if "best peer" in r.target]
    assert row.value == pytest.approx(90 / 70) and not row.met and row.detail.endswith("(sentence-transformers)")


def test_without_infinity_there_is_no_peer_row() -> None:
    found = [_m("online", "server", 300.0), _m("bulk", "server", 90.0), _m("bulk", "sentence-transformers", 30.0)]
    targets = [r.target for r in ratio_rows(found)]
    assert "online queries: server / infinity-emb" not in targets
    assert not any("best peer" in t for t in targets)


def test_the_headline_shows_the_peer_rows(tmp_path: Path) -> None:
    from benchmarks.ratios import save
    from benchmarks.report import main

    context = {
        "date": "d", "machine": "2 cores", "load_start": "0", "load_end": "0", "texts": "t", "threads": 2,
        "repeats": 1, "command": "c", "serving": "ServingOptions(cpu_precision='bf16')", "versions": {},
        "cpu_precision_request": "auto",
    }  # fmt: skip
    found = [_m("online", "server", 300.0), _m("online", "infinity-emb", 100.0), _m("bulk", "server", 90.0)]
    found += [_m("bulk", "sentence-transformers", 30.0), _m("bulk", "infinity-emb", 45.0)]
    save(found, tmp_path / "side_by_side-m.json", context)
    readme = tmp_path / "README.md"
    readme.write_text("\n".join(f"<!-- {n}:start -->\n<!-- {n}:end -->" for n in ("headline", "side-by-side")))
    assert main(["--results", str(tmp_path), "--readme", str(readme)]) == 0
    headline = readme.read_text().split("<!-- headline:end -->")[0]
    assert "| m | online queries: server / infinity-emb | 300 / 100 texts/s | 3.00 | >= 2 | yes |" in headline
    assert (
        "| m | bulk: server / best peer (infinity-emb, sentence-transformers) | 90 / 45 texts/s (infinity-emb)"
        in headline
    )
