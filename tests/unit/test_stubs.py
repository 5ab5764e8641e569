"""Finding a server's Python stubs through /proc: a fake stub (python under the stub's name, with its argv)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
