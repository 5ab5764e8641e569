"""Finding a server's Python stubs through /proc: a fake stub (python under the stub's name, with its argv)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from instruct_embed.server.stubs import STUB_BINARY, is_alive, rss_bytes, server_rss_bytes, stubs_of

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def fake_stub(tmp_path: Path, model: str) -> subprocess.Popen[bytes]:
    """A child of this process with the argv Triton 2.51 gives a stub: model.py, shm, sizes, parent pid, ..."""
    binary = tmp_path / STUB_BINARY
    if not binary.exists():
        binary.symlink_to(sys.executable)
    model_py = tmp_path / "repository" / model / "1" / "model.py"
    model_py.parent.mkdir(parents=True, exist_ok=True)
    model_py.write_text("import time\ntime.sleep(60)\n")
    argv = [str(binary), str(model_py), "triton_python_backend_shm_region_x", "1048576", "1048576", str(os.getpid())]
    return subprocess.Popen([*argv, "/opt/backends/python", "336", f"{model}_0_0", "DEFAULT"])


def test_stubs_are_found_with_their_model_and_instance(tmp_path: Path) -> None:
    stubs = [fake_stub(tmp_path, "e5_encoder"), fake_stub(tmp_path, "e5_preprocess")]
    try:
        deadline = time.monotonic() + 10
        while len(found := stubs_of(os.getpid())) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert {(s.model, s.instance) for s in found} == {
            ("e5_encoder", "e5_encoder_0_0"),
            ("e5_preprocess", "e5_preprocess_0_0"),
        }
        assert {s.pid for s in found} == {p.pid for p in stubs}
        memory = server_rss_bytes(os.getpid())
        assert set(memory) == {"tritonserver", "e5_encoder_0_0", "e5_preprocess_0_0"} and all(memory.values())
    finally:
        for stub in stubs:
            stub.kill()
            stub.wait()
    assert stubs_of(os.getpid()) == []


def test_a_zombie_is_not_alive(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while is_alive(child.pid):  # exits at once; unreaped, it stays a zombie
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert Path(f"/proc/{child.pid}").exists()
    child.wait()
    assert not is_alive(child.pid) and rss_bytes(child.pid) == 0
    assert is_alive(os.getpid()) and rss_bytes(os.getpid()) > 0


class FakeTriton:
    """The three repository-API calls the watchdog makes, answered on loopback; records the loads. A load calls
    `on_load` before it answers, as Triton starts the new processes before its load returns."""

    def __init__(self, model: str, on_load: Callable[[], None]) -> None:
        import http.server
        import json
        import threading

        self.loads: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # /v2/models/<model>/config
                self._answer({"name": model, "backend": "python", "parameters": {"k": {"string_value": "v"}}})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/load"):
                    on_load()
                    outer.loads.append(json.loads(json.loads(body)["parameters"]["config"]))  # once it is done
                    self._answer({})
                else:  # /v2/repository/index
                    self._answer([{"name": model, "version": "1", "state": "READY"}])

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_watchdog_reloads_a_dead_stub_with_a_new_marker_each_time(tmp_path: Path) -> None:
    from instruct_embed.server.repository_api import RELOAD_PARAMETER
    from instruct_embed.server.stubs import StubWatchdog

    stubs: list[subprocess.Popen[bytes]] = []

    def start_stub() -> None:  # what a load does: a new process for the instance, running once the load returns
        stubs.append(fake_stub(tmp_path, "e5_preprocess"))
        deadline = time.monotonic() + 10
        while not any(s.pid == stubs[-1].pid for s in stubs_of(os.getpid())):
            assert time.monotonic() < deadline
            time.sleep(0.02)

    triton = FakeTriton("e5_preprocess", on_load=start_stub)
    start_stub()
    watchdog = StubWatchdog(os.getpid(), triton.url, interval_s=0.05).start()
    later = fake_stub(tmp_path, "e5_encoder")  # started after the watchdog: not one of the expected
    try:
        deadline = time.monotonic() + 20
        for reloads in (1, 2):
            stubs[-1].kill()
            stubs[-1].wait()
            while len(triton.loads) < reloads:
                assert time.monotonic() < deadline, "no reload after the stub died"
                time.sleep(0.05)
        time.sleep(0.3)  # a few more looks: the reloaded stub is running, nothing more to reload
        assert watchdog.expected() == {"e5_preprocess_0_0": "e5_preprocess"}  # the later one is not watched
    finally:
        watchdog.stop()
        for process in [*stubs, later]:
            process.kill()
            process.wait()
        triton.server.shutdown()
    first, second = triton.loads
    assert first["name"] == "e5_preprocess" and first["parameters"]["k"] == {"string_value": "v"}  # served config
    assert first["parameters"][RELOAD_PARAMETER] != second["parameters"][RELOAD_PARAMETER]  # else a no-op load
    assert [r.model for r in watchdog.restarts] == ["e5_preprocess"] * 2 and all(
        r.error is None for r in watchdog.restarts
    )
