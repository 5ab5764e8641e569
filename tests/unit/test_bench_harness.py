"""The benchmark harness's pure parts: perf_analyzer input data and CSV, /metrics parsing, the ratio table.

Nothing here times anything: speed is measured by `make bench`, never asserted in tests.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.perf_analyzer import (
    LoadPoint,
    PerfSettings,
    command,
    input_data,
    mixed_input_data,
    parse_csv,
    read_rows,
    write_input_sets,
    write_rows,
)
from benchmarks.ratios import Measurement, Target, measurements_table, ratio_rows, ratio_table
from benchmarks.serving import Padding, padding_counters, parse_metrics

COLUMNS = (
    "Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,"
    "Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency"
)
CONCURRENCY_CSV = f"""Concurrency,{COLUMNS}
4,705.243,3,3697,1,71,885,617,2,4006,7699,8624,11772
16,1204.5,3,3697,2500,71,885,617,2,12000,15000,17500,21000
"""
RATE_CSV = f"""Request Rate,{COLUMNS}
100,99.9,51,3056,1,66,794,328,0,3500,4000,4900,6000
"""


def test_input_data_is_one_request_per_text_with_its_role() -> None:
    data = input_data(["what is B12?", "proteins"], "query")
    assert data == {
        "data": [
            {"TEXT": {"content": ["what is B12?"], "shape": [1]}, "ROLE": {"content": ["query"], "shape": [1]}},
            {"TEXT": {"content": ["proteins"], "shape": [1]}, "ROLE": {"content": ["query"], "shape": [1]}},
        ]
    }
    with pytest.raises(ValueError):
        input_data([], "query")


def test_mixed_input_puts_a_document_after_every_three_queries() -> None:
    queries = [f"q{i}" for i in range(8)]
    data = mixed_input_data(queries, ["d0", "d1"], document_every=4)
    texts = [(e["TEXT"]["content"][0], e["ROLE"]["content"][0]) for e in data["data"]]
    assert texts == [
        ("q0", "query"),
        ("q1", "query"),
        ("q2", "query"),
        ("d0", "document"),
        ("q4", "query"),
        ("q5", "query"),
        ("q6", "query"),
        ("d1", "document"),
    ]


def test_input_sets_are_written_as_json_that_keeps_unicode(tmp_path: Path) -> None:
    paths = write_input_sets(["Größe?"], ["Zellen \u00b5m"], tmp_path)
    assert sorted(paths) == ["documents", "mixed", "queries"]
    assert "Größe?" in paths["queries"].read_text()
    assert json.loads(paths["documents"].read_text())["data"][0]["ROLE"]["content"] == ["document"]


def test_command_sets_the_load_the_window_and_the_csv(tmp_path: Path) -> None:
    settings = PerfSettings(measurement_interval_ms=3000, stability_percentage=25, max_trials=5)
    argv = command(
        "m", "127.0.0.1:8001", "grpc", tmp_path / "q.json", LoadPoint("concurrency", 16), tmp_path / "o.csv", settings
    )
    joined = " ".join(argv)
    assert "-m m -u 127.0.0.1:8001 -i grpc" in joined
    assert "--concurrency-range 16 " in joined and "--measurement-interval 3000" in joined
    assert argv[-2:] == ["-f", str(tmp_path / "o.csv")]
    rate = command("m", "u", "http", tmp_path / "q.json", LoadPoint("request_rate", 250), tmp_path / "o.csv", settings)
    assert "--request-rate-range 250" in " ".join(rate)
    counted = replace(settings, request_count_window=20000)
    joined = " ".join(
        command("m", "u", "grpc", tmp_path / "q.json", LoadPoint("concurrency", 16), tmp_path / "o", counted)
    )
    assert "--measurement-mode count_windows --measurement-request-count 20000" in joined
    assert "--measurement-interval" not in joined


def test_csv_rows_come_back_in_milliseconds() -> None:
    rows = parse_csv(CONCURRENCY_CSV, "m", "grpc", "queries")
    assert [r.load for r in rows] == [4, 16]
    first = rows[0]
    assert first.mode == "concurrency" and first.throughput == pytest.approx(705.243)
    assert first.p95_ms == pytest.approx(8.624) and first.p50_ms == pytest.approx(4.006)
    assert first.server_compute_ms == pytest.approx((71 + 885 + 617) / 1000)
    (rate,) = parse_csv(RATE_CSV, "m", "http", "mixed")
    assert rate.mode == "request_rate" and rate.load == 100 and rate.p99_ms == pytest.approx(6.0)


def test_csv_with_an_unknown_first_column_is_refused() -> None:
    with pytest.raises(ValueError, match="first column"):
        parse_csv("Batch,Inferences/Second\n1,2\n", "m", "grpc", "queries")


def test_rows_survive_a_round_trip_through_the_results_csv(tmp_path: Path) -> None:
    rows = parse_csv(CONCURRENCY_CSV, "m", "grpc", "queries") + parse_csv(RATE_CSV, "m", "http", "mixed")
    assert read_rows(write_rows(rows, tmp_path / "all.csv")) == rows


METRICS = """# HELP instruct_embed_real_tokens_total Tokens of real text encoded
# TYPE instruct_embed_real_tokens_total counter
instruct_embed_real_tokens_total{model="m_encoder"} 900
instruct_embed_real_tokens_total{model="other_encoder"} 5
instruct_embed_computed_tokens_total{model="m_encoder"} 1000
instruct_embed_sub_batches_total{model="m_encoder"} 7
nv_cache_util 7.62939453125e-06
not a metric line
"""


def test_padding_efficiency_is_read_from_the_encoders_counters() -> None:
    samples = parse_metrics(METRICS)
    assert {s.name for s in samples} >= {"instruct_embed_real_tokens_total", "nv_cache_util"}
    counters = padding_counters(samples, "m_encoder")
    assert counters == Padding(900, 1000, 7) and counters.efficiency == pytest.approx(0.9)
    window = Padding(1900, 2100, 9) - counters
    assert window == Padding(1000, 1100, 2) and window.efficiency == pytest.approx(1000 / 1100)


def _m(scenario: str, system: str, values: tuple[float, ...], unit: str = "texts/s") -> Measurement:
    return Measurement("m", scenario, system, unit, values)


def test_ratio_rows_divide_medians_and_say_whether_the_target_is_met() -> None:
    found = [
        _m("bulk", "server", (90, 100, 110)),
        _m("bulk", "in-process ORT", (100, 100, 1000)),
        _m("padding", "server", (0.95,), "real/computed"),
    ]
    targets = (
        Target("bulk ratio", ("bulk", "server"), ("bulk", "in-process ORT"), 0.9),
        Target("padding", ("padding", "server"), None, 0.9),
        Target("never measured", ("online", "server"), ("online", "in-process ORT"), 0.9),
    )
    rows = ratio_rows(found, targets)
    assert [(r.target, round(r.value, 3), r.met) for r in rows] == [("bulk ratio", 1.0, True), ("padding", 0.95, True)]
    table = ratio_table(rows)
    assert "| m | bulk ratio | 100 / 100 texts/s | 1.00 | >= 0.9 | yes |" in table
    assert "never measured" not in table


def test_a_missed_target_is_reported_as_missed() -> None:
    found = [_m("priority off", "server", (200.0,), "ms"), _m("priority on", "server", (100.0,), "ms")]
    (row,) = ratio_rows(found, (Target("p95 off / on", ("priority off", "server"), ("priority on", "server"), 3.0),))
    assert row.value == pytest.approx(2.0) and not row.met
    assert "| no |" in ratio_table([row])


def test_the_like_for_like_bf16_row_appears_only_beside_a_bf16_baseline() -> None:
    fp32_run = [_m("bulk", "server", (30.0,)), _m("bulk", "sentence-transformers", (10.0,))]
    assert [r.target for r in ratio_rows(fp32_run)] == ["bulk: server / sentence-transformers"]
    bf16_run = [*fp32_run, _m("bulk", "sentence-transformers bf16", (25.0,))]
    rows = {r.target: r for r in ratio_rows(bf16_run)}
    assert rows["bulk: server / sentence-transformers"].met
    like_for_like = rows["bulk: server / sentence-transformers bf16 autocast"]
    assert like_for_like.value == pytest.approx(1.2) and not like_for_like.met


def test_the_token_budget_defaults_to_the_one_tuned_for_the_precision() -> None:
    from benchmarks.side_by_side import TUNED_TOKEN_BUDGET, parse_args, serving_options

    for precision in ("fp32", "bf16"):
        args = parse_args(["--cpu-precision", precision])
        options = serving_options(args)
        assert (options.cpu_precision, options.token_budget) == (precision, TUNED_TOKEN_BUDGET[precision])
        assert (args.precision_request, args.precision_choice) == (precision, f"pinned: cpu_precision {precision}")
    assert serving_options(parse_args(["--cpu-precision", "bf16", "--token-budget", "700"])).token_budget == 700


def test_auto_is_resolved_per_model_as_prepare_resolves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import instruct_embed.prepare as prepare
    from benchmarks import side_by_side
    from instruct_embed.repository.configs import ServingOptions

    args = side_by_side.parse_args([])
    assert (args.cpu_precision, args.precision_request) == ("auto", "auto")
    prepared = prepare.PreparedModel("multilingual-e5-small", Path("hf"), Path("g.onnx"), None, "mit", "ok")
    monkeypatch.setattr(prepare, "prepare_model", lambda name, options: prepared)
    chosen = ServingOptions(cpu_precision="bf16", precision_choice="auto: this CPU has bf16 units")
    monkeypatch.setattr(prepare, "resolve_cpu_precision", lambda *a: chosen)
    side_by_side.resolve_precision(args, "multilingual-e5-small")
    assert (args.cpu_precision, args.token_budget) == ("bf16", side_by_side.TUNED_TOKEN_BUDGET["bf16"])
    assert args.precision_choice == "auto: this CPU has bf16 units"
    assert side_by_side.serving_options(args).cpu_precision == "bf16"


def test_measurements_table_lists_every_repeat() -> None:
    table = measurements_table([_m("online", "server", (1.0, 2.0, 3.0))])
    assert "| m | online | server | 2 | texts/s | 1, 2, 3 |" in table


def test_report_rewrites_only_its_own_section() -> None:
    from benchmarks.report import perf_table, replace_section

    document = "# Title\n<!-- perf:start -->\nold\n<!-- perf:end -->\nhand-written\n"
    table = perf_table(parse_csv(RATE_CSV, "m", "http", "mixed"))
    updated = replace_section(document, "perf", table)
    assert updated.startswith("# Title\n<!-- perf:start -->\n| model |") and updated.endswith("hand-written\n")
    assert "| m | http | mixed | 100 req/s offered | 99.9 | 3.5 | 4.9 | 6.0 |" in updated
    with pytest.raises(ValueError, match="markers"):
        replace_section("no markers", "perf", table)


def test_each_perf_section_shows_only_its_own_plots(tmp_path: Path) -> None:
    from benchmarks.report import perf_section

    rows = parse_csv(CONCURRENCY_CSV, "m", "grpc", "queries")
    for stem in ("m", "m-null"):  # a model's name is a prefix of its null-encoder results
        write_rows(rows, tmp_path / f"{stem}.csv")
        (tmp_path / f"{stem}-concurrency.png").write_bytes(b"png")
    sections = {part.split("\n", 1)[0]: part for part in perf_section(tmp_path, tmp_path).split("### ")[1:]}
    assert "(m-concurrency.png)" in sections["m"] and "m-null-concurrency" not in sections["m"]
    assert "(m-null-concurrency.png)" in sections["m-null"] and "(m-concurrency.png)" not in sections["m-null"]


def test_the_default_configuration_and_pinned_precisions_get_their_own_tables(tmp_path: Path) -> None:
    from benchmarks.ratios import save
    from benchmarks.report import main

    def piece(name: str, serving: str, server: float, request: str | None) -> None:
        context = {
            "date": "d", "machine": "2 cores", "load_start": "0", "load_end": "0", "texts": "t", "threads": 2,
            "repeats": 1, "command": "c", "serving": serving, "versions": {},
        }  # fmt: skip
        if request is not None:
            context["cpu_precision_request"] = request
        found = [_m("bulk", "server", (server,)), _m("bulk", "in-process ORT", (100.0,))]
        save(found, tmp_path / f"side_by_side-{name}.json", context)

    piece("auto", "ServingOptions(cpu_precision='bf16', token_budget=2048)", 55.0, "auto")
    piece("fp32", "ServingOptions(cpu_precision='fp32', token_budget=512)", 91.0, "fp32")
    piece("bf16-old", "ServingOptions(cpu_precision='bf16', token_budget=2048)", 37.0, None)  # before auto
    readme = tmp_path / "README.md"
    groups = ("", "-fp32", "-bf16")
    sections = [f"{kind}{g}" for g in groups for kind in ("headline", "side-by-side")]
    readme.write_text("\n".join(f"<!-- {n}:start -->\n<!-- {n}:end -->" for n in sections))
    assert main(["--results", str(tmp_path), "--readme", str(readme)]) == 0
    text = readme.read_text()

    def section(name: str) -> str:
        return text.split(f"<!-- {name}:start -->")[1].split(f"<!-- {name}:end -->")[0]

    assert [v in section("headline") for v in ("55 / 100", "91 / 100", "37 / 100")] == [True, False, False]
    assert [v in section("headline-fp32") for v in ("55 / 100", "91 / 100", "37 / 100")] == [False, True, False]
    assert [v in section("headline-bf16") for v in ("55 / 100", "91 / 100", "37 / 100")] == [False, False, True]
    assert "token_budget=512" in section("side-by-side-fp32")


def test_a_burst_stalls_when_no_answer_comes_for_longer_than_the_margin() -> None:
    from benchmarks.load import Bursts, longest_silence

    # Answers one execute apart, then a request that came back half a second after the others.
    assert longest_silence([40.0, 95.0, 150.0, 160.0]) == 55.0
    assert longest_silence([40.0, 95.0, 150.0, 660.0]) == 510.0
    # A whole burst held back: the silence is from the start to the first answer.
    assert longest_silence([560.0, 600.0]) == 560.0
    bursts = Bursts(worst_ms=(160.0, 660.0, 600.0), silence_ms=(55.0, 510.0, 560.0))
    assert bursts.stalled(300.0) == 2
    assert bursts.stalled(600.0) == 0


def test_bursts_is_a_scenario_of_the_side_by_side_run() -> None:
    from benchmarks.side_by_side import parse_args

    args = parse_args(["--scenarios", "bursts", "--bursts", "5"])
    assert args.scenarios == ["bursts"] and args.bursts == 5


def test_in_windows_never_shows_the_embedder_more_than_the_window_and_keeps_the_order():
    import numpy as np

    from benchmarks.in_process import InWindows

    class Recorder:
        label = "recorder"

        def __init__(self) -> None:
            self.calls: list[list[str]] = []

        def embed(self, texts, role):
            self.calls.append(list(texts))
            return np.array([[float(t)] for t in texts], dtype=np.float32)

    recorder = Recorder()
    texts = [str(i) for i in range(37)]
    vectors = InWindows(recorder, 16).embed(texts, "query")  # type: ignore[arg-type]
    assert [len(c) for c in recorder.calls] == [16, 16, 5]
    assert vectors[:, 0].tolist() == list(range(37))
    assert "16 texts at a time" in InWindows(recorder, 16).label  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        InWindows(recorder, 0)  # type: ignore[arg-type]
