"""Locating the tritonserver binary, its libraries and a Python-backend folder in the pytriton wheel."""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from instruct_embed.paths import home


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    library_dirs: tuple[Path, ...]
    backend_dir: Path  # holds python/{libtriton_python.so, triton_python_backend_utils.py, stub}
    cache_dir: Path  # the response cache implementations (local)


class TritonNotFound(RuntimeError):
    pass


def find_triton() -> TritonInstall:
    """The server bundled in nvidia-pytriton, with a backend folder assembled for this Python.

    The wheel keeps the Python backend and its stubs apart (one stub per Python version); Triton wants them
    in one folder, so one is made of symbolic links under the cache home.
    """
    # Found, not imported: importing pytriton runs its own client, which needs gevent, and only the server's
    # files are wanted (a GPU host may carry the wheel without pytriton's dependencies: benchmarks/gpu_served.sh).
    found = importlib.util.find_spec("pytriton")
    if found is None or not found.submodule_search_locations:
        raise TritonNotFound("nvidia-pytriton is not installed; run `make setup`")
    package = Path(next(iter(found.submodule_search_locations))) / "tritonserver"
    binary = package / "bin" / "tritonserver"
    libs = package.parent.parent / "nvidia_pytriton.libs"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = package / "python_backend_stubs" / version / "triton_python_backend_stub"
    for required in (binary, libs, stub, package / "backends" / "python" / "libtriton_python.so"):
        if not required.exists():
            raise TritonNotFound(f"missing {required} in the nvidia-pytriton wheel")
    backend_dir = home() / "triton" / f"backends-py{version}"
    python_dir = backend_dir / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for source in (
        package / "backends" / "python" / "libtriton_python.so",
        package / "backends" / "python" / "triton_python_backend_utils.py",
        stub,
    ):
        link = python_dir / source.name
        if link.is_symlink() and Path(os.readlink(link)) == source:
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(source)
    # The stub links libpython3.x: prefer the running interpreter's own, so stub and clients share one Python.
    python_libdir = Path(str(sysconfig.get_config_var("LIBDIR") or ""))
    library_dirs = tuple(p for p in (python_libdir, libs) if p.is_dir())
    return TritonInstall(binary, library_dirs, backend_dir, package / "caches")
