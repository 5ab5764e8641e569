"""The server's environment lets the Python-backend stub import this project's packages, venv or not."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from instruct_embed.server import LocalTritonServer, ServerOptions


def test_stub_environment_points_at_this_interpreter(tmp_path: Path, monkeypatch) -> None:
    # As under `make test`: the virtual environment is not activated, so its bin is not on PATH.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = LocalTritonServer(ServerOptions(repository=tmp_path)).environment()
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == sysconfig.get_paths()["purelib"]
    assert any(Path(d, "libpython3.11.so.1.0").exists() or "nvidia_pytriton.libs" in d
               for d in env["LD_LIBRARY_PATH"].split(os.pathsep))  # fmt: skip
