"""What a measurement ran on: cores, CPU model, load, versions; and waiting for a quiet machine.

Numbers taken while other work shares the cores are not comparable from one run to the next, so every report
carries the load average at the start and the end of its run, and the harnesses can wait for a quiet machine.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "onnxruntime",
    "tokenizers",
    "torch",
    "sentence-transformers",
    "transformers",
    "tritonclient",
    "nvidia-pytriton",
    "numpy",
)
QUIET_LOAD = 1.5  # 1-minute load average below which a 2-core machine counts as quiet


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def describe_load(load: Sequence[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def machine() -> str:
    return f"{os.cpu_count()} CPU cores ({cpu_model()}), {platform.system()} {platform.release()}"


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def wait_for_quiet(
    threshold: float = QUIET_LOAD,
    timeout_s: float = 600.0,
    poll_s: float = 15.0,
    log: Callable[[str], None] = print,
) -> bool:
    """Wait until the 1-minute load average is below `threshold`; False if it never was within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        one_minute = load_average()[0]
        if one_minute < threshold:
            return True
        if time.monotonic() >= deadline:
            log(f"machine still busy: load average {one_minute:.2f} >= {threshold} after {timeout_s:.0f}s")
            return False
        log(f"waiting for a quiet machine: load average {one_minute:.2f} >= {threshold}")
        time.sleep(poll_s)


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far) for every process we may read."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found


def _descendants(root: int, processes: dict[int, tuple[int, float]]) -> set[int]:
    mine = {root}
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in processes.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return mine


class ForeignCpu:
    """Cores used by processes that are not this one or its children (other people's work) over a window.

    The load average counts the benchmark itself; this does not, so a measurement can tell that someone else's
    work shared the cores and be taken again. Processes that end inside the window are not counted.
    """

    def __init__(self) -> None:
        self._start: dict[int, tuple[int, float]] = {}
        self._t0 = 0.0

    def start(self) -> ForeignCpu:
        self._start, self._t0 = _processes(), time.monotonic()
        return self

    def cores(self) -> float:
        now, seconds = _processes(), max(time.monotonic() - self._t0, 1e-9)
        mine = _descendants(os.getpid(), now) | _descendants(os.getpid(), self._start)
        used = 0.0
        for pid, (_, cpu) in now.items():
            if pid not in mine:
                used += cpu - self._start.get(pid, (0, 0.0))[1]
        return used / seconds


def wait_for_idle(
    max_cores: float, timeout_s: float = 1200.0, window_s: float = 3.0, log: Callable[[str], None] = print
) -> bool:
    """Wait until other processes use at most `max_cores` over a `window_s` window; False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        probe = ForeignCpu().start()
        time.sleep(window_s)
        used = probe.cores()
        if used <= max_cores:
            return True
        if time.monotonic() >= deadline:
            log(f"    other processes still use {used:.2f} cores after {timeout_s:.0f}s: measuring anyway")
            return False
        if not said:
            log(f"    waiting: other processes use {used:.2f} cores")
            said = True
