"""The server's log keeps every start (a crash's log survives the restart) and says how each one ended.

A shell script stands in for tritonserver: these tests are about the process handling around it.
"""

from __future__ import annotations

import io
import signal
import stat
import sys
from pathlib import Path

import pytest

from instruct_embed.server import LocalTritonServer, ServerOptions
from instruct_embed.server.install import TritonInstall
from instruct_embed.server.process import ServerStartError, describe_exit, free_port, run_until_signalled
from tests.stand_in_triton import write_stand_in


def stand_in(tmp_path: Path, script: str) -> TritonInstall:
    binary = tmp_path / "tritonserver"
    binary.write_text("#!/bin/sh\n" + script + "\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return TritonInstall(binary=binary, library_dirs=(), backend_dir=tmp_path, cache_dir=tmp_path)


def server(tmp_path: Path, install: TritonInstall) -> LocalTritonServer:
    options = ServerOptions(
        repository=tmp_path / "repository",
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=tmp_path / "tritonserver.log",
        ready_timeout_s=10,
        restart_dead_stubs=False,
    )
    return LocalTritonServer(options, install)


def test_a_start_that_fails_reports_its_own_output_and_how_it_ended(tmp_path: Path) -> None:
    install = stand_in(tmp_path, 'echo "run $$ says: no model repository"; exit 3')
    first = server(tmp_path, install)
    with pytest.raises(ServerStartError, match=r"ended at start \(exit code 3\)") as raised:
        first.start()
    assert "no model repository" in str(raised.value)
    second = LocalTritonServer(first.options, install)
    with pytest.raises(ServerStartError) as again:
        second.start()
    tail = str(again.value)
    assert tail.count("says: no model repository") == 1  # this start's output only, not the first one's
    log = first.log_file.read_text()
    assert log.count("says: no model repository") == 2  # both starts are kept
    assert log.count("starting tritonserver on") == 2
    assert log.count("tritonserver ended: exit code 3") == 2


def test_a_server_killed_by_a_signal_says_so_in_its_log(tmp_path: Path) -> None:
    # The stand-in dies of SIGSEGV before it is ready: start() fails, and stop() records how the process ended.
    install = stand_in(tmp_path, "kill -SEGV $$")
    running = server(tmp_path, install)
    with pytest.raises(ServerStartError):
        running.start()
    assert "tritonserver ended: killed by SIGSEGV" in running.log_file.read_text()


CRASHES_WHEN_READY = """
print("serving", flush=True)
time.sleep(1.5)
os.kill(os.getpid(), signal.SIGSEGV)
"""


def test_serve_exits_1_naming_the_signal_when_tritonserver_dies(tmp_path: Path) -> None:
    binary = write_stand_in(tmp_path / "tritonserver", sys.executable, CRASHES_WHEN_READY)
    install = TritonInstall(binary=binary, library_dirs=(), backend_dir=tmp_path, cache_dir=tmp_path)
    crashing = server(tmp_path, install).start()
    out = io.StringIO()
    assert run_until_signalled(crashing, out=out) == 1
    assert f"tritonserver exited unexpectedly (killed by SIGSEGV); log: {crashing.log_file}" in out.getvalue()
    log = crashing.log_file.read_text()
    assert "serving" in log and log.rstrip().endswith("tritonserver ended: killed by SIGSEGV ---")


@pytest.mark.parametrize(
    ("code", "described"),
    [(0, "exit code 0"), (1, "exit code 1"), (-signal.SIGKILL, "killed by SIGKILL"), (-200, "killed by signal 200")],
)
def test_describe_exit(code: int, described: str) -> None:
    assert describe_exit(code) == described
