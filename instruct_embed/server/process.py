"""Starting, watching and stopping a tritonserver process on loopback."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from instruct_embed.server import repository_api
from instruct_embed.server.install import TritonInstall, find_triton
from instruct_embed.server.stubs import StubWatchdog


class ServerStartError(RuntimeError):
    """The server did not become ready; the message carries the end of its log."""


@dataclass(frozen=True)
class ServerOptions:
    repository: Path
    models: tuple[str, ...] = ()  # loaded explicitly; empty: every model in the repository
    host: str = "127.0.0.1"  # loopback unless told otherwise
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    log_file: Path | None = None
    ready_timeout_s: float = 180.0
    response_cache_bytes: int = 0  # 0: no response cache
    exit_timeout_s: int = 30  # how long SIGTERM waits for in-flight requests (and open connections)
    # Reload a model whose Python stub process died (Triton 2.51 does not restart it); needs `models`, whose
    # explicit model control allows the reload.
    restart_dead_stubs: bool = True
    extra_args: tuple[str, ...] = field(default_factory=tuple)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` (any address), from the kernel's tables."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str | None:
    """'pid 1234 (tritonserver)' for the process listening on `port`, where /proc lets us see it; else None."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    name = (pid_dir / "comm").read_text().strip()
                    return f"pid {pid_dir.name} ({name})"
    return None


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_owner(owner: int) -> None:
    """Runs in the child between fork and exec: the kernel SIGKILLs it when its owner ends, however the owner
    ends (SIGKILL, an OOM kill, a CI timeout), so no tritonserver outlives `serve` holding the ports; its Python
    stubs notice their parent is gone and exit on their own."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != owner:  # the owner ended before prctl took effect
        os._exit(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalTritonServer:
    """A tritonserver child process in its own process group, which dies with this process.

    Use as a context manager, or call start() / stop(). stop() sends SIGTERM to the whole group (the Python
    backend stubs included), waits for in-flight requests to finish, and kills what is left after a timeout. If
    this process ends without stop() (even by SIGKILL), the kernel kills tritonserver (PR_SET_PDEATHSIG) and its
    stubs follow it. Start it from a thread that lives as long as the server: the kernel ties it to that thread.
    """

    def __init__(self, options: ServerOptions, install: TritonInstall | None = None) -> None:
        self.options = options
        self.install = install or find_triton()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = options.log_file or options.repository.parent / "tritonserver.log"
        self._log_offset = 0  # where this start's part of the log begins (earlier starts' parts are kept)
        self.watchdog: StubWatchdog | None = None

    @property
    def http_url(self) -> str:
        return f"{self.options.host}:{self.options.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.options.host}:{self.options.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.options.host}:{self.options.metrics_port}/metrics"

    def command(self) -> list[str]:
        o = self.options
        args = [
            str(self.install.binary),
            f"--model-repository={o.repository}",
            f"--backend-directory={self.install.backend_dir}",
            f"--cache-directory={self.install.cache_dir}",
            f"--http-address={o.host}",
            f"--http-port={o.http_port}",
            f"--grpc-address={o.host}",
            f"--grpc-port={o.grpc_port}",
            f"--metrics-address={o.host}",
            f"--metrics-port={o.metrics_port}",
            "--allow-gpu-metrics=false",
            "--strict-readiness=true",
            f"--exit-timeout-secs={o.exit_timeout_s}",
        ]
        if o.models:
            args.append("--model-control-mode=explicit")
            args.extend(f"--load-model={name}" for name in o.models)
        if o.response_cache_bytes:
            args.append(f"--cache-config=local,size={o.response_cache_bytes}")
        return [*args, *o.extra_args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        libs = [str(p) for p in self.install.library_dirs]
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
        # The stub is its own process: it must import numpy, tokenizers and onnxruntime from this environment.
        # Its embedded Python finds its prefix (and so the virtual environment's site-packages) from the first
        # `python3` on PATH, and may ignore PYTHONPATH: put this interpreter's folder first.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]).strip(os.pathsep)
        site = sysconfig.get_paths()["purelib"]
        env["PYTHONPATH"] = os.pathsep.join([site, env.get("PYTHONPATH", "")]).strip(os.pathsep)
        env["PYTHONNOUSERSITE"] = "1"
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def start(self) -> LocalTritonServer:
        o = self.options
        for port in (o.http_port, o.grpc_port, o.metrics_port):
            if not port_is_free(o.host, port):
                holder = port_holder(port)
                held = f"by {holder}" if holder else "(by a process this user cannot see)"
                raise ServerStartError(
                    f"port {port} on {o.host} is taken {held}; stop it or choose other ports "
                    "(--http-port, --grpc-port, --metrics-port)"
                )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        # Appended, not overwritten: after a crash and a restart (by a supervisor or a test), the crashed
        # server's log is what explains it.
        with self.log_file.open("ab") as log:
            self._log_offset = log.tell()
            _log_event(log, f"starting tritonserver on {self.http_url} (HTTP), {self.grpc_url} (gRPC)")
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
                preexec_fn=functools.partial(die_with_owner, os.getpid()),
            )
        try:
            self.wait_ready(o.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        if o.models and o.restart_dead_stubs:
            self.watchdog = StubWatchdog(self.process.pid, self.http_url).start()
        return self

    def is_ready(self) -> bool:
        """Triton says ready and, once started, every Python model's stub process is alive."""
        return repository_api.server_ready(self.http_url) and (self.watchdog is None or self.watchdog.healthy())

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                ended = describe_exit(self.process.returncode)
                raise ServerStartError(f"tritonserver ended at start ({ended}):\n{self.log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.25)
        raise ServerStartError(f"tritonserver not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines that this start wrote to the log."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = 40.0) -> int | None:
        """Drain, SIGTERM the process group, wait, then SIGKILL what remains. Returns the exit code.

        Draining unloads the ensembles first (explicit model control only) and waits up to `exit_timeout_s` for
        their in-flight requests: once signalled, Triton refuses the encoder step of an ensemble request that is
        still in its preprocess step ("Server is stopping"), so a plain SIGTERM would fail requests it accepted.
        """
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None
        if self.process is None:
            return None
        process, self.process = self.process, None
        if self.options.models and process.poll() is None:
            with contextlib.suppress(*repository_api.APIError):
                repository_api.drain(self.http_url, self.options.exit_timeout_s)
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # stubs that outlived their parent
        with contextlib.suppress(OSError), self.log_file.open("ab") as log:
            _log_event(log, f"tritonserver ended: {describe_exit(process.returncode)}")
        return process.returncode

    def __enter__(self) -> LocalTritonServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def describe_exit(code: int) -> str:
    """'exit code 0', or the signal that ended the process ('killed by SIGSEGV') for a negative code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _log_event(log: BinaryIO, event: str) -> None:
    """One line of our own in tritonserver's log, marked so that it cannot be mistaken for Triton's."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log.write(f"--- instruct-embed {stamp}: {event} ---\n".encode())
    log.flush()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def run_until_signalled(server: LocalTritonServer, out=sys.stdout) -> int:
    """Block until Ctrl-C or SIGTERM, then stop the server cleanly."""
    stopping = False

    def _request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, _request_stop)
    try:
        while not stopping:
            process = server.process
            if process is None or process.poll() is not None:
                ended = describe_exit(process.returncode) if process is not None else "not running"
                print(f"tritonserver exited unexpectedly ({ended}); log: {server.log_file}", file=out)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        code = server.stop()
        print(f"tritonserver stopped (exit code {code}); log: {server.log_file}", file=out)
    return 0
