"""multilingual-e5-small served in the default precision, `auto`, on a CPU with bf16 units, two encoder instances:
auto chooses bf16 (OpenVINO on the CPU's bf16 units) after validating it at prepare time, says so to clients, and
the served vectors stay within half-precision tolerance of the PyTorch reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from instruct_embed.catalog import get_spec
from instruct_embed.client import EmbedClient
from instruct_embed.export.validate import HALF_PRECISION_TOLERANCE, cosine_rows, validate_onnx
from instruct_embed.repository.configs import ServingOptions
from tests.integration.test_server_parity import mixed_texts
from tests.reliability_support import E5, cosine, golden, own_server
from tests.unit.test_graph_sessions import needs_bf16

pytestmark = [pytest.mark.integration, needs_bf16]

AUTO_SERVING = ServingOptions(encoder_instances=2, ort_intra_op_threads=1)  # cpu_precision: auto, the default


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    running = own_server(tmp_path_factory.mktemp("bf16"), AUTO_SERVING).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_bf16_runtime_passes_validation_against_the_fp32_reference(prepared_models: dict[str, Any]) -> None:
    prepared = prepared_models[E5]
    report = validate_onnx(get_spec(E5), Path(prepared.hf_dir), Path(prepared.onnx), cpu_precision="bf16")
    assert report.min_cosine >= HALF_PRECISION_TOLERANCE
    # bf16 rounds each row's own numbers; nothing is shared across a batch (unlike int8's per-batch scales).
    assert report.max_batch_vs_single <= 1e-4


def test_auto_chose_bf16_and_the_server_says_why(server: Any) -> None:
    with EmbedClient(server.http_url) as client:
        (served,) = [m for m in client.models() if m.name == E5]
    assert served.encoder_precision == "bf16 (OpenVINO)"
    assert served.precision_choice.startswith("auto: this CPU has bf16 units and bf16 keeps min cosine 0.99")


def test_served_bf16_vectors_match_the_golden_fp32_ones(server: Any) -> None:
    with EmbedClient(server.http_url) as client:
        for entry in golden():
            served = client.encode(E5, [entry.text], role=entry.role)[0]
            assert cosine(served, entry.vector) >= HALF_PRECISION_TOLERANCE, entry.text
            assert abs(float(np.linalg.norm(served)) - 1.0) < 1e-3


def test_a_bf16_batch_gives_what_single_requests_give(server: Any) -> None:
    texts = mixed_texts(9)
    with EmbedClient(server.grpc_url, protocol="grpc") as client:
        batch = client.encode(E5, texts)
        singles = np.concatenate([client.encode(E5, [t]) for t in texts])
    assert float(cosine_rows(batch, singles).min()) >= 1.0 - 1e-4
