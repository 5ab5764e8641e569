"""`serve`'s preparation step: what is missing is prepared; --cpu-precision renders every model again in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from instruct_embed import cli


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    import instruct_embed.prepare as prepare

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(prepare, "prepare_model", lambda name, options: calls.append((name, options)))
    return calls


def serve_args(*flags: str) -> object:
    return cli.build_parser().parse_args(["serve", *flags])


def test_only_models_without_a_config_are_prepared(tmp_path: Path, prepared: list) -> None:
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    (tmp_path / "all-MiniLM-L6-v2" / "config.pbtxt").write_text("name: 'x'")
    cli._prepare_for_serving(("multilingual-e5-small", "all-MiniLM-L6-v2"), tmp_path, serve_args())
    assert [(name, options.serving.cpu_precision) for name, options in prepared] == [("multilingual-e5-small", "auto")]


def test_cpu_precision_renders_every_model_again_in_it(tmp_path: Path, prepared: list) -> None:
    (tmp_path / "all-MiniLM-L6-v2").mkdir()
    (tmp_path / "all-MiniLM-L6-v2" / "config.pbtxt").write_text("name: 'x'")
    args = serve_args("--cpu-precision", "bf16", "--no-prepare")
    cli._prepare_for_serving(("multilingual-e5-small", "all-MiniLM-L6-v2"), tmp_path, args)
    assert [(name, o.serving.cpu_precision, o.repository) for name, o in prepared] == [
        ("multilingual-e5-small", "bf16", tmp_path),
        ("all-MiniLM-L6-v2", "bf16", tmp_path),
    ]


def test_an_unknown_cpu_precision_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        serve_args("--cpu-precision", "fp16")
    error = capsys.readouterr().err
    assert "--cpu-precision: invalid choice: 'fp16'" in error
    assert all(p in error for p in ("auto", "fp32", "bf16", "int8"))


def test_a_model_rendered_by_another_version_is_named_not_rerendered(
    tmp_path: Path, prepared: list, capsys: pytest.CaptureFixture[str]
) -> None:
    from instruct_embed.catalog import get_spec
    from instruct_embed.repository import render
    from instruct_embed.repository.configs import ServingOptions, ensemble_config

    for name in ("multilingual-e5-small", "all-MiniLM-L6-v2"):  # the ensembles, which name their steps
        render.write_config(ensemble_config(get_spec(name), ServingOptions()), tmp_path / name)
    (tmp_path / "all-MiniLM-L6-v2_encoder" / "1" / render.RUNTIME_PACKAGE).mkdir(parents=True)
    (tmp_path / "all-MiniLM-L6-v2_encoder" / "1" / render.RUNTIME_PACKAGE / "cpu_encoder.py").write_text("# old")
    cli._prepare_for_serving(("multilingual-e5-small", "all-MiniLM-L6-v2"), tmp_path, serve_args())
    assert prepared == [], "a rendered repository may hold chosen options: it is not replaced behind the user's back"
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and "all-MiniLM-L6-v2" in warnings[0]
    assert "instruct-embed prepare all-MiniLM-L6-v2" in warnings[0]
