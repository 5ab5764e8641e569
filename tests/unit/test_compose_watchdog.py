"""The Triton image's entrypoint runs the stub watchdog beside tritonserver, from the files the image copies.

A stand-in tritonserver (answers readiness, exits 3 on SIGTERM) takes the real one's place; the watchdog runs from
a folder holding exactly what docker/triton/Dockerfile copies, with a Python that does not have this project
installed, so a module the image forgot fails here. The real server with a dead stub: test_compose_metrics.py.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instruct_embed import containers
from instruct_embed.server.process import free_port
from tests.stand_in_triton import write_stand_in
from tests.unit.compose_helpers import NEWER_THAN_CONTAINER_PYTHON, REPO_ROOT, Dockerfile

ENTRYPOINT = REPO_ROOT / "docker" / "triton" / "entrypoint.sh"
TRITON_DOCKERFILE = Dockerfile(REPO_ROOT / "docker" / "triton" / "Dockerfile")
IMAGE_PYTHONPATH = "/opt/instruct-embed/python"  # the entrypoint's default WATCHDOG_PYTHONPATH
# The interpreter the virtual environment was made from: the same Python, without this project installed.
BARE_PYTHON = Path(sys._base_executable)  # type: ignore[attr-defined]

EXITS_3_ON_SIGTERM = """
def terminate(signum, frame):
    print(f"stand-in: signal {signum}", flush=True)
    os._exit(3)


signal.signal(signal.SIGTERM, terminate)
print(f"stand-in pid {os.getpid()}", flush=True)
while True:
    time.sleep(1)
"""


def image_python_folder(root: Path) -> Path:
    """What the Dockerfile copies under IMAGE_PYTHONPATH, laid out under `root` as the image has it."""
    for sources, destination in TRITON_DOCKERFILE.copies():
        if not destination.startswith(IMAGE_PYTHONPATH):
            continue
        target = root / destination.removeprefix(IMAGE_PYTHONPATH).strip("/")
        for source in sources:
            path = REPO_ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.name)
    return root


@pytest.fixture(scope="module")
def image_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_python_folder(tmp_path_factory.mktemp("image-python"))


def start_entrypoint(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[str], Path, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_stand_in(bin_dir / "tritonserver", BARE_PYTHON, EXITS_3_ON_SIGTERM)
    # python3 is a Python without this project: the watchdog can import only what the image copies.
    (bin_dir / "python3").symlink_to(BARE_PYTHON)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    full_env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "INSTRUCT_EMBED_MODELS": "e5-large-v2",
        **env,
    }
    process = subprocess.Popen(
        [str(ENTRYPOINT), f"--http-port={free_port()}", "--model-control-mode=explicit"],
        stdout=out.open("w"),
        stderr=err.open("w"),
        env=full_env,
        text=True,
        start_new_session=True,
    )
    return process, out, err


def wait_for(path: Path, text: str, process: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text():
        assert process.poll() is None, f"the entrypoint ended ({process.returncode}): {path.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} in {path.name} after {timeout_s} s: {path.read_text()}"
        time.sleep(0.1)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_watchdog_runs_from_the_image_files_and_sigterm_reaches_tritonserver(
    image_python: Path, tmp_path: Path
) -> None:
    process, out, err = start_entrypoint(tmp_path, WATCHDOG_PYTHONPATH=str(image_python))
    try:
        # Ready, and no Python model processes (the stand-in has none): the watchdog imported and is watching.
        wait_for(err, "instruct-embed watchdog: watching 0 Python model processes", process)
        (stand_in_pid,) = [int(line.split()[-1]) for line in out.read_text().splitlines() if "stand-in pid" in line]
        assert stand_in_pid != process.pid, "tritonserver runs as the entrypoint's child, beside the watchdog"
        os.kill(process.pid, signal.SIGTERM)  # what `docker stop` does: the entrypoint alone is signalled
        assert process.wait(timeout=30) == 3, "the entrypoint exits with tritonserver's code"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert f"stand-in: signal {int(signal.SIGTERM)}" in out.read_text()
    deadline = time.monotonic() + 10
    while not group_is_gone(process.pid):  # the watchdog went with it
        assert time.monotonic() < deadline, "a process of the entrypoint outlived it"
        time.sleep(0.1)
    assert "Traceback" not in err.read_text()


def test_stub_watchdog_false_runs_tritonserver_alone_in_the_entrypoints_place(tmp_path: Path) -> None:
    process, out, err = start_entrypoint(tmp_path, STUB_WATCHDOG="false")
    try:
        wait_for(out, "stand-in pid", process)
        assert f"stand-in pid {process.pid}" in out.read_text(), "exec: tritonserver is the container's process"
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 3
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert "watchdog" not in err.read_text()


def test_the_watchdog_files_import_only_the_standard_library_on_python_3_10(image_python: Path) -> None:
    files = sorted(image_python.rglob("*.py"))
    names = {str(f.relative_to(image_python)) for f in files}
    assert "instruct_embed/server/watch.py" in names and "instruct_embed/__init__.py" in names
    for path in files:
        source = path.read_text()
        ast.parse(source, feature_version=containers.CONTAINER_PYTHON)
        assert not NEWER_THAN_CONTAINER_PYTHON.search(source), f"{path.name} uses a name newer than Python 3.10"
        for node in ast.parse(source).body:  # what importing runs; imports inside functions run on a call
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or top in ("__future__", "instruct_embed"), (
                    f"{path.name} imports {module}: the Triton image has only the standard library for it"
                )
