"""The Python backend's stub processes: finding them, measuring them, and reloading a model whose stub died.

Each instance of a Python model runs in its own `triton_python_backend_stub` process. Triton 2.51 does not
restart a stub that dies (killed, out of memory): every request to that model then fails after about a second
with "Stub process '<instance>' is not healthy", while the server and the model still report ready. Loading the
model again through the repository API (explicit model control), with its own config attached, starts fresh
stubs and swaps them in (`repository_api.reload`); the ensemble that uses the model stays loaded.

Beside a tritonserver started by other means, `python3 -m instruct_embed.server.watch` runs the watchdog.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from instruct_embed.server import repository_api

STUB_BINARY = "triton_python_backend_stub"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stub:
    pid: int
    model: str  # e.g. multilingual-e5-small_encoder
    instance: str  # e.g. multilingual-e5-small_encoder_0_0


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:  # the process is gone, or not ours to read
        return None


def _stat(pid: int) -> list[bytes] | None:
    """/proc/<pid>/stat from field 3 (state) on; None when the process is gone."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    return stat[stat.rfind(b")") + 2 :].split()


def _parent_pid(pid: int) -> int | None:
    fields = _stat(pid)
    return None if fields is None else int(fields[1])


def is_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, is not alive)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != b"Z"


def stubs_of(server_pid: int) -> list[Stub]:
    """The stub processes whose parent is the tritonserver process `server_pid` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        cmdline = _read(f"/proc/{pid}/cmdline")
        if not cmdline or STUB_BINARY.encode() not in cmdline.split(b"\0", 1)[0]:
            continue
        if _parent_pid(pid) != server_pid:
            continue
        args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
        model = Path(args[1]).parent.parent.name  # <repository>/<model>/<version>/model.py
        instance = next((a for a in args[2:] if re.fullmatch(re.escape(model) + r"_\d+_\d+", a)), model)
        found.append(Stub(pid, model, instance))
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` (0 when it is gone)."""
    status = _read(f"/proc/{pid}/status")
    if status is None:
        return 0
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def server_rss_bytes(server_pid: int) -> dict[str, int]:
    """Resident memory of tritonserver and of each of its stubs, keyed "tritonserver" and by instance."""
    memory = {"tritonserver": rss_bytes(server_pid)}
    for stub in stubs_of(server_pid):
        memory[stub.instance] = rss_bytes(stub.pid)
    return memory


@dataclass
class Restart:
    model: str
    instances: tuple[str, ...]
    at: float  # time.time()
    seconds: float = 0.0  # how long the reload took
    error: str | None = None


@dataclass
class StubWatchdog:
    """Polls a server's stubs; reloads (through the repository API) a ready model one of whose stubs died.

    `http_url` is HOST:PORT of Triton's HTTP endpoint, which must run with --model-control-mode=explicit.
    The stubs running at `start()` are the expected ones: start it once the server is ready. (Stubs seen later are
    not added: while a model loads, a stub without an instance name runs for a moment, and would then count as dead.)
    A model that is no longer READY in the repository index (unloaded on purpose) is left alone.
    """

    server_pid: int
    http_url: str
    interval_s: float = 0.5
    retry_after_s: float = 10.0  # a reload that failed is tried again after this long, not at every poll
    restarts: list[Restart] = field(default_factory=list)
    on_restart: Callable[[Restart], None] | None = None

    def __post_init__(self) -> None:
        self._expected: dict[str, str] = {}  # instance -> model
        self._lock = threading.Lock()  # readiness checks (other threads) read it while the polling thread edits it
        self._failed_at: dict[str, float] = {}  # model -> time.monotonic() of its last failed reload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> StubWatchdog:
        """Note the running stubs as the expected ones and start polling (again, after `stop`)."""
        self._stop.clear()
        running = {s.instance: s.model for s in stubs_of(self.server_pid)}
        with self._lock:
            self._expected = running
        self._thread = threading.Thread(target=self._run, name="stub-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def expected(self) -> dict[str, str]:
        """The instances watched: instance -> model."""
        with self._lock:
            return dict(self._expected)

    def missing(self) -> dict[str, list[str]]:
        """Models with expected stubs that are not running: model -> the missing instances."""
        alive = {s.instance for s in stubs_of(self.server_pid)}
        gone: dict[str, list[str]] = {}
        with self._lock:
            for instance, model in self._expected.items():
                if instance not in alive:
                    gone.setdefault(model, []).append(instance)
        return gone

    def healthy(self) -> bool:
        return not self.missing()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not is_alive(self.server_pid):
                return  # the server itself is gone: nothing to reload into
            gone = self.missing()
            if not gone:
                continue
            ready = self._ready_models()
            for model, instances in gone.items():
                if self._stop.is_set():
                    return
                if ready is not None and model not in ready:
                    self._forget(model)  # unloaded on purpose (or failed to load): not ours to bring back
                    continue
                failed_at = self._failed_at.get(model)
                if failed_at is None or time.monotonic() - failed_at >= self.retry_after_s:
                    self._reload(model, tuple(instances))

    def _reload(self, model: str, instances: tuple[str, ...]) -> None:
        restart = Restart(model, instances, time.time())
        log.warning("stub of %s died (%s): reloading the model", model, ", ".join(instances))
        started = time.monotonic()
        try:
            repository_api.reload(self.http_url, model)
        except repository_api.APIError as error:
            restart.error = str(error)
            self._failed_at[model] = time.monotonic()
            log.error("reloading %s failed: %s", model, error)
        restart.seconds = time.monotonic() - started
        self.restarts.append(restart)
        if self.on_restart is not None:
            self.on_restart(restart)

    def _forget(self, model: str) -> None:
        with self._lock:
            self._expected = {i: m for i, m in self._expected.items() if m != model}

    def _ready_models(self) -> set[str] | None:
        try:
            return {name for name, state in repository_api.index(self.http_url).items() if state == "READY"}
        except repository_api.APIError:
            return None
