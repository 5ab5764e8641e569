"""multilingual-e5-small served with `cpu_precision=int8`: the fp32 graph quantised once with calibrated static
scales (export/static_int8.py), validated with int8's own tolerance at prepare time; its vectors stay within that
tolerance of the PyTorch reference and, the scales being constants of the graph, do not depend on the batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import pytest

from instruct_embed.client import EmbedClient
from instruct_embed.export.static_int8 import INT8_TOLERANCE
from instruct_embed.export.validate import cosine_rows
from instruct_embed.repository.configs import ServingOptions
from tests.integration.test_server_parity import mixed_texts
from tests.reliability_support import E5, cosine, golden, own_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    serving = ServingOptions(cpu_precision="int8", encoder_instances=1, ort_intra_op_threads=1)
    running = own_server(tmp_path_factory.mktemp("int8"), serving).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_served_graph_is_the_quantised_one_and_the_server_says_so(server: Any) -> None:
    encoder_dir = server.options.repository / f"{E5}_encoder" / "1"
    graph = onnx.load(str(next(encoder_dir.glob("*.onnx"))), load_external_data=False)
    ops = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    with EmbedClient(server.http_url) as client:
        (served,) = [m for m in client.models() if m.name == E5]
    assert (served.encoder_precision, served.precision_choice) == ("int8 (ONNX Runtime)", "pinned: cpu_precision int8")


def test_served_int8_vectors_stay_within_int8_tolerance_of_the_golden_fp32_ones(server: Any) -> None:
    with EmbedClient(server.http_url) as client:
        for entry in golden():
            served = client.encode(E5, [entry.text], role=entry.role)[0]
            assert cosine(served, entry.vector) >= INT8_TOLERANCE, entry.text


def test_an_int8_vector_does_not_depend_on_its_batch_neighbours(server: Any) -> None:
    texts = mixed_texts(9)
    with EmbedClient(server.grpc_url, protocol="grpc") as client:
        batch = client.encode(E5, texts)
        reversed_batch = client.encode(E5, texts[::-1])[::-1]
        singles = np.concatenate([client.encode(E5, [t]) for t in texts])
    # fp32's own batch-vs-single noise (summation order), not a batch-dependent scale (dynamic int8: ~1e-2).
    assert float(cosine_rows(batch, singles).min()) >= 1.0 - 1e-5
    assert float(cosine_rows(reversed_batch, singles).min()) >= 1.0 - 1e-5
