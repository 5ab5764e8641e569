"""`auto`, the default CPU precision: prepare resolves it to bf16 only where the CPU has bf16 units and bf16 stays
within AUTO_BF16_MIN_COSINE of the fp32 reference, and the rendered model says what it computes in and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import instruct_embed.prepare as prepare
from instruct_embed.catalog import Precision, get_spec
from instruct_embed.client.request import parse_config
from instruct_embed.export.validate import ValidationError
from instruct_embed.repository import render
from instruct_embed.repository.configs import ServingOptions, ensemble_config
from instruct_embed.repository.targets import EncoderTarget
from instruct_embed.runtime.contract import SPEC_PARAMETER

E5 = get_spec("multilingual-e5-small")


def resolve(monkeypatch: pytest.MonkeyPatch, has_bf16: bool, report: str | Exception, **options: object):
    monkeypatch.setattr(prepare, "cpu_has_bf16", lambda: has_bf16)

    def validated(*args: object) -> str:
        if isinstance(report, Exception):
            raise report
        return report

    monkeypatch.setattr(prepare, "_validated_cpu_bf16", validated)
    return prepare.resolve_cpu_precision(E5, Path("g.onnx"), prepare.PrepareOptions(**options), Path("hf"))  # type: ignore[arg-type]


def test_auto_serves_bf16_where_the_cpu_has_it_and_it_stays_close_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    serving = resolve(monkeypatch, True, "min cosine vs reference 0.999988 over 16 texts; batch vs single 2e-06")
    assert serving.cpu_precision == "bf16"
    assert serving.precision_choice == (
        "auto: this CPU has bf16 units and bf16 keeps min cosine 0.999988 against the fp32 reference"
    )


@pytest.mark.parametrize(
    ("has_bf16", "report", "options", "why"),
    [
        (False, "min cosine vs reference 0.999990", {}, "this CPU has no bf16 units (AMX-BF16 / AVX512-BF16)"),
        (True, "min cosine vs reference 0.999500 over 16 texts", {}, "bf16's min cosine 0.999500 against the"),
        (True, ValidationError("sparse weights differ"), {}, "bf16 failed its validation (sparse weights differ)"),
        (True, "min cosine vs reference 0.999990", {"miniature": True}, "a miniature is served in fp32"),
        (True, "min cosine vs reference 0.999990", {"precision": Precision.FP16}, "the graph is fp16"),
    ],
)
def test_auto_falls_back_to_fp32_saying_why(
    monkeypatch: pytest.MonkeyPatch, has_bf16: bool, report: str | Exception, options: dict, why: str
) -> None:
    serving = resolve(monkeypatch, has_bf16, report, **options)
    assert serving.cpu_precision == "fp32"
    assert serving.precision_choice.startswith(f"auto: {why}")


@pytest.mark.parametrize("pinned", ["fp32", "bf16", "int8"])
def test_a_pinned_precision_is_kept_and_called_pinned(monkeypatch: pytest.MonkeyPatch, pinned: str) -> None:
    serving = resolve(monkeypatch, False, ValidationError("never asked"), serving=ServingOptions(cpu_precision=pinned))
    assert (serving.cpu_precision, serving.precision_choice) == (pinned, f"pinned: cpu_precision {pinned}")


def test_the_rendered_ensemble_tells_clients_and_serve_what_the_encoder_computes_in(tmp_path: Path) -> None:
    serving = ServingOptions(cpu_precision="bf16", precision_choice="auto: this CPU has bf16 units")
    config = ensemble_config(E5, serving)
    render.write_config(config, tmp_path / E5.name)
    assert render.rendered_precision(tmp_path, E5.name) == "bf16 (OpenVINO); auto: this CPU has bf16 units"
    as_json = {"parameters": {SPEC_PARAMETER: {"string_value": config.parameters[SPEC_PARAMETER].string_value}}}
    served = parse_config(E5.name, as_json)
    assert (served.encoder_precision, served.precision_choice) == ("bf16 (OpenVINO)", "auto: this CPU has bf16 units")
    int8 = ensemble_config(E5, ServingOptions(cpu_precision="int8", precision_choice="pinned: cpu_precision int8"))
    assert json.loads(int8.parameters[SPEC_PARAMETER].string_value)["encoder_precision"] == "int8 (ONNX Runtime)"


def test_a_server_that_does_not_say_leaves_the_precision_empty(tmp_path: Path) -> None:
    spec = json.loads(ensemble_config(E5, ServingOptions()).parameters[SPEC_PARAMETER].string_value)
    del spec["encoder_precision"], spec["precision_choice"]
    served = parse_config(E5.name, {"parameters": {SPEC_PARAMETER: {"string_value": json.dumps(spec)}}})
    assert (served.encoder_precision, served.precision_choice) == ("", "")
    unresolved = json.loads(ensemble_config(E5, ServingOptions()).parameters[SPEC_PARAMETER].string_value)
    assert unresolved["encoder_precision"] == "fp32 (ONNX Runtime)"
    assert unresolved["precision_choice"].startswith("auto, unresolved")


def test_the_cuda_target_names_its_pytorch_precision() -> None:
    spec = json.loads(
        ensemble_config(E5, ServingOptions(target=EncoderTarget.CUDA)).parameters[SPEC_PARAMETER].string_value
    )
    assert spec["encoder_precision"] == "fp16 (PyTorch on cuda)"
    assert spec["precision_choice"] == "the family's engine precision"


def test_prepare_prints_what_the_encoder_computes_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from instruct_embed import cli

    serving = ServingOptions(cpu_precision="fp32", precision_choice="auto: this CPU has no bf16 units")
    render.write_config(ensemble_config(E5, serving), tmp_path / E5.name)
    prepared = prepare.PreparedModel(E5.name, tmp_path / "hf", tmp_path / "g.onnx", tmp_path, "MIT", "min cosine 1")
    monkeypatch.setattr(prepare, "prepare_model", lambda name, options: prepared)
    assert cli.main(["prepare", E5.name]) == 0
    assert "  encoder fp32 (ONNX Runtime); auto: this CPU has no bf16 units\n" in capsys.readouterr().out
