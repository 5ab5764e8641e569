"""Shared fixtures: a test cache home, prepared real models and one real tritonserver per session."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Prepared models are reused across runs (CI starts from a fresh clone, so it builds them once).
os.environ.setdefault("INSTRUCT_EMBED_HOME", str(REPO_ROOT / ".cache" / "test-home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SERVED_MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def prepared_models() -> dict[str, object]:
    """The two real local models, prepared (weights, validated ONNX, rendered repository), served in fp32 pinned:
    the tests compare the server with the fp32 reference at fp32's tolerance on any CPU (the default, auto, serves
    bf16 where the CPU has bf16 units: test_cpu_bf16.py serves that)."""
    from instruct_embed.prepare import PrepareOptions, prepare_model
    from instruct_embed.repository.configs import ServingOptions

    options = PrepareOptions(serving=ServingOptions(cpu_precision="fp32"))
    return {name: prepare_model(name, options) for name in SERVED_MODELS}


@pytest.fixture(scope="session")
def triton_server(prepared_models: dict[str, object]) -> Iterator[object]:
    """A real tritonserver on free loopback ports serving the prepared repository."""
    from instruct_embed.catalog import get_spec
    from instruct_embed.paths import repository_dir
    from instruct_embed.repository.configs import triton_models
    from instruct_embed.server import LocalTritonServer, ServerOptions
    from instruct_embed.server.process import free_port

    repository = repository_dir()
    models = tuple(name for n in SERVED_MODELS for name in triton_models(get_spec(n)))
    options = ServerOptions(
        repository=repository,
        models=models,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=repository.parent / "tritonserver-tests.log",
        exit_timeout_s=5,
    )
    server = LocalTritonServer(options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a failing integration test shows the servers' logs -------------------------------------------------------------
# A server that died takes its reason with it unless its log is shown where CI prints the failure: every
# tritonserver log written to while the test ran is attached to the report (its last lines).
_TEST_STARTED = pytest.StashKey[float]()
LOG_TAIL_LINES = 60
_LOG_ROOTS: list[Path] = []  # the test home and this session's temporary folder: where servers write logs


@pytest.fixture(scope="session", autouse=True)
def _server_log_roots(tmp_path_factory: pytest.TempPathFactory) -> None:
    _LOG_ROOTS[:] = [Path(os.environ["INSTRUCT_EMBED_HOME"]), tmp_path_factory.getbasetemp()]


def server_logs_written_since(started: float, roots: list[Path]) -> list[Path]:
    logs = {log for root in roots if root.is_dir() for log in root.rglob("tritonserver*.log")}
    return sorted(log for log in logs if log.stat().st_mtime >= started)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_TEST_STARTED] = time.time() - 1  # file times are coarser than time.time() on some filesystems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and item.get_closest_marker("integration") and _TEST_STARTED in item.stash:
        for log in server_logs_written_since(item.stash[_TEST_STARTED], _LOG_ROOTS):
            tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            report.sections.append((f"{log} (last {len(tail)} lines)", "\n".join(tail)))
    return report
