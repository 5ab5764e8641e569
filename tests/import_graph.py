"""The import graph between the checkout's folders, read from the source (ast), for the layout tests.

A node is a folder as a reader sees it: each sub-package or module directly under instruct_embed/ (client,
export, repository, runtime, ..., cli), and the top-level benchmarks/, model_repository/ and tests/.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "instruct_embed"
TOP_LEVEL = ("benchmarks", "model_repository", "tests")
# The copied runtime's name inside a rendered model (render.RUNTIME_PACKAGE): the runtime folder itself.
RUNTIME_COPY = "instruct_embed_runtime"


def node_of_module(module: str) -> str | None:
    """The folder an absolute import of `module` lands in; None for a module outside the checkout."""
    parts = module.split(".")
    if parts[0] == RUNTIME_COPY:
        return f"{PACKAGE}.runtime"
    if parts[0] == PACKAGE:
        return ".".join(parts[:2])
    if parts[0] in TOP_LEVEL:
        return parts[0]
    return None


def _module_of_path(root: Path, path: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def node_of_path(root: Path, path: Path) -> str:
    parts = path.relative_to(root).parts
    if parts[0] == PACKAGE:
        return PACKAGE if len(parts) == 2 and parts[1] == "__init__.py" else f"{PACKAGE}.{Path(parts[1]).stem}"
    return parts[0]


def sources(root: Path) -> Iterator[Path]:
    for folder in (PACKAGE, *TOP_LEVEL):
        for path in sorted((root / folder).rglob("*.py")):
            if "__pycache__" not in path.parts and "layout" not in path.relative_to(root).parts[1:3]:
                yield path


def imported_modules(root: Path, path: Path) -> Iterator[str]:
    """Absolute names of what `path` imports (relative imports resolved against its package)."""
    package = _module_of_path(root, path)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            # `from pkg import name` may import the sub-module pkg.name: count what each name lands in.
            yield from (f"{module}.{alias.name}" for alias in node.names)


def folder_graph(root: Path) -> dict[str, set[str]]:
    """folder -> the other folders its modules import."""
    graph: dict[str, set[str]] = {}
    for path in sources(root):
        source = node_of_path(root, path)
        targets = graph.setdefault(source, set())
        for module in imported_modules(root, path):
            target = node_of_module(module)
            if target is not None and target != source:
                targets.add(target)
    return graph


def module_graph(root: Path) -> dict[str, set[str]]:
    """module -> the checkout's modules it imports (the longest module name an import starts with)."""
    modules = {".".join(_module_of_path(root, path)): path for path in sources(root)}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = graph.setdefault(module, set())
        for imported in imported_modules(root, path):
            parts = imported.split(".")
            known = next(
                (".".join(parts[:k]) for k in range(len(parts), 0, -1) if ".".join(parts[:k]) in modules), None
            )
            if known is not None and known != module:
                targets.add(known)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph (its nodes, the first repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None
