"""The layout a newcomer reads: folders import under the names they have on disk, no folder cycles, the Triton
layout in model_repository/ is what rendering starts from, and an installed wheel carries all of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from instruct_embed.catalog import get_spec, model_names
from instruct_embed.repository import configs, layout
from instruct_embed.repository.targets import EncoderTarget
from tests.import_graph import find_cycle, folder_graph, module_graph

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")


def test_no_folder_is_remapped_onto_another_import_name() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "package-dir" not in setuptools, "each folder imports under the name it has on disk"
    assert setuptools["packages"]["find"]["include"] == ["instruct_embed*"]


def test_no_cycle_between_folders() -> None:
    graph = folder_graph(ROOT)
    assert {"instruct_embed.export", "instruct_embed.repository", "benchmarks", "model_repository"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "folders import each other: " + " -> ".join(cycle or [])
    # Copied into every rendered Python model, where nothing else of the project exists.
    assert graph["instruct_embed.runtime"] == set()
    # The cuda encoder alone also runs the export's PyTorch module from the installed package (torch_session.py).
    assert graph["model_repository"] == {"instruct_embed.runtime", "instruct_embed.catalog", "instruct_embed.export"}
    cuda_model = (ROOT / "model_repository" / "cuda_encoder" / "1" / "model.py").read_text()
    for kind in ("cpu_encoder", "null_encoder", "preprocess", "postprocess"):
        model = (ROOT / "model_repository" / kind / "1" / "model.py").read_text()
        assert "from instruct_embed." not in model and "import instruct_embed." not in model, kind
    assert "from instruct_embed.export.torch_session import" in cuda_model


def test_no_cycle_between_modules() -> None:
    """Inside a folder too: no two files import each other, directly or round a loop."""
    cycle = find_cycle(module_graph(ROOT))
    assert cycle is None, "modules import each other: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    """The check above could fail: two folders that import each other are reported as a cycle."""
    for name, other in (("client", "server"), ("server", "client")):
        folder = tmp_path / "instruct_embed" / name
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text(f"from instruct_embed.{other} import thing\n")
    for top in ("benchmarks", "model_repository", "tests"):
        (tmp_path / top).mkdir()
    for graph in (folder_graph(tmp_path), module_graph(tmp_path)):
        cycle = find_cycle(graph)
        assert cycle is not None and set(cycle) == {"instruct_embed.client", "instruct_embed.server"}


@pytest.mark.skipif(not RUFF.exists(), reason="ruff is not installed beside this Python (make setup installs it)")
@pytest.mark.parametrize("project_module", ["instruct_embed.client", "benchmarks.texts"])
def test_import_sorting_sees_the_project_as_first_party(project_module: str) -> None:
    """Ruff's default settings (no config read) sort the project's imports into their own block."""
    sorted_source = f"import numpy\n\nfrom {project_module} import x\n"
    as_third_party = f"import numpy\nfrom {project_module} import x\n"

    def accepted(source: str) -> bool:
        command = [str(RUFF), "check", "--isolated", "--select", "I", "--stdin-filename", "probe.py", "-"]
        return subprocess.run(command, input=source, text=True, capture_output=True, cwd=ROOT).returncode == 0

    assert accepted(sorted_source), f"{project_module} is sorted among third-party packages"
    assert not accepted(as_third_party), "the probe could not fail"


def test_every_python_step_of_the_layout_has_a_config_and_a_model() -> None:
    kinds = sorted(p.name for p in layout.LAYOUT.iterdir() if p.is_dir())
    assert set(kinds) == {layout.ENSEMBLE, layout.PREPROCESS, layout.POSTPROCESS, *(t.layout for t in EncoderTarget)}
    for kind in kinds:
        config = layout.base_config(kind)  # parses as a Triton ModelConfig
        python = config.backend == "python"
        assert python == layout.python_model(kind).is_file(), f"{kind}: a model.py exactly where the backend is python"
        assert config.platform or config.backend, f"{kind}: names what runs it"


@pytest.mark.parametrize("target", list(EncoderTarget))
def test_rendered_configs_keep_what_their_layout_config_says(target: EncoderTarget) -> None:
    """Rendering fills the layout's configs in; it never overrides what they set."""
    options = configs.ServingOptions(target=target)
    for name in model_names():
        spec = get_spec(name)
        rendered = {
            layout.ENSEMBLE: configs.ensemble_config(spec, options),
            layout.PREPROCESS: configs.preprocess_config(spec, options),
            layout.POSTPROCESS: configs.postprocess_config(spec, options),
            target.layout: configs.encoder_config(spec, options),
        }
        for kind, config in rendered.items():
            merged = mc.ModelConfig()
            merged.CopyFrom(config)
            merged.MergeFrom(layout.base_config(kind))
            assert merged == config, f"{name}: the {kind} config departs from model_repository/{kind}/config.pbtxt"


@pytest.mark.slow
def test_the_wheel_carries_one_import_name_and_the_whole_layout(tmp_path: Path) -> None:
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path / "source"
    skipped = shutil.ignore_patterns(".git", ".venv", ".cache", "build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT, source, symlinks=True, ignore=skipped)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
    ]
    subprocess.run([*command, str(source)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("instruct_embed-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"instruct_embed"}
    sources = {str(p.relative_to(ROOT)) for p in (ROOT / "instruct_embed").rglob("*.py") if "layout" not in p.parts}
    assert sources - names == set(), "every module of the package is installed"
    shipped = {
        f"instruct_embed/repository/layout/{p.relative_to(ROOT / 'model_repository')}"
        for p in (ROOT / "model_repository").rglob("*")
        if p.is_file() and p.suffix in (".pbtxt", ".py")
    }
    assert shipped and shipped - names == set(), "the wheel renders from the same layout a checkout shows"
