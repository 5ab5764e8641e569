"""Installed import names are unambiguous: one top-level package, and every source folder shipped."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_PACKAGE = "instruct_embed.model_repository.templates"


def setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_mapped_folder_is_under_the_one_import_name() -> None:
    mapping = setuptools_table()["package-dir"]
    assert all(name == "instruct_embed" or name.startswith("instruct_embed.") for name in mapping)
    # The card's folders are mapped, never installed as bare top-level `export` or `client`.
    assert mapping["instruct_embed.export"] == "export" and mapping["instruct_embed.client"] == "client"


def test_every_package_folder_is_listed() -> None:
    """A folder with __init__.py that pyproject does not list would vanish from a non-editable install."""
    table = setuptools_table()
    mapping: dict[str, str] = table["package-dir"]
    listed = set(table["packages"])
    found = set()
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            name = ".".join([package, *relative.parts]) if relative.parts else package
            # A sub-folder that is itself mapped is counted under its own mapping.
            if not any(init.parent == ROOT / f and p != package for p, f in mapping.items()):
                found.add(name)
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    data_folders = {TEMPLATES_PACKAGE}  # Python files that are data, not a package: no __init__.py
    assert listed - found == data_folders, f"packages listed without a folder: {sorted(listed - found - data_folders)}"


def test_rendered_model_templates_ship() -> None:
    """The Triton model.py templates are copied into rendered repositories: listed, so every file is installed."""
    assert TEMPLATES_PACKAGE in setuptools_table()["packages"]
    assert len(list((ROOT / "model_repository" / "templates").glob("*_model.py"))) >= 3
