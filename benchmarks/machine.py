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
