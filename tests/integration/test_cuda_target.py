"""The cuda encoder target in the real local Triton: the export's PyTorch module behind the sub-batching encoder.

Here it runs on CPU tensors (torch_device cpu): the same model.py, session, sub-batching and Triton step as on a
GPU, so CI covers all of it. The `gpu`-marked twin runs the real thing where torch sees a CUDA device. Parity is
against the golden vectors of the fp32 PyTorch reference (the ONNX graph the CPU encoder serves equals them to
1e-5: test_server_parity.py), in the family's 16-bit precision (fp16 for BERT).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from instruct_embed.client import EmbedClient
from instruct_embed.export.validate import HALF_PRECISION_TOLERANCE, cosine_rows
from instruct_embed.repository.configs import ServingOptions
from instruct_embed.repository.layout import read_config
from instruct_embed.repository.targets import EncoderTarget, TorchDevice
from instruct_embed.runtime.contract import ENCODER, step_name
from tests.integration.test_server_parity import mixed_texts
from tests.reliability_support import E5, cosine, golden, own_server

pytestmark = pytest.mark.integration

NO_CUDA = not torch.cuda.is_available()
DEVICES = [
    pytest.param(TorchDevice.CPU, id="cpu-tensors"),
    pytest.param(
        TorchDevice.CUDA,
        id="gpu",
        marks=[pytest.mark.gpu, pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU visible to torch")],
    ),
]


@pytest.fixture(scope="module", params=DEVICES)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    serving = ServingOptions(target=EncoderTarget.CUDA, torch_device=request.param, ort_intra_op_threads=1)
    running = own_server(tmp_path_factory.mktemp(f"cuda-{request.param}"), serving).start()
    try:
        yield running
    finally:
        running.stop()


def test_the_rendered_encoder_is_the_pytorch_module_with_its_weights(server: Any) -> None:
    encoder = server.options.repository / step_name(E5, ENCODER)
    config = read_config(encoder / "config.pbtxt")
    assert config.backend == "python"
    assert config.parameters["torch_precision"].string_value == "fp16"  # BERT's engine precision
    assert (encoder / "1" / "hf" / "model.safetensors").is_file()
    assert "TorchGraphSession" in (encoder / "1" / "model.py").read_text()


def test_served_vectors_match_the_fp32_reference(server: Any) -> None:
    for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
        with EmbedClient(url, protocol=protocol) as client:
            for entry in golden():
                served = client.encode(E5, [entry.text], role=entry.role)[0]
                assert cosine(served, entry.vector) >= HALF_PRECISION_TOLERANCE, (protocol, entry.text)
                assert abs(float(np.linalg.norm(served)) - 1.0) < 1e-3


def test_a_batch_gives_what_single_requests_give(server: Any) -> None:
    texts = mixed_texts(11)  # different lengths: the encoder re-batches their rows by length
    with EmbedClient(server.grpc_url, protocol="grpc") as client:
        batch = client.encode(E5, texts)
        singles = np.concatenate([client.encode(E5, [t]) for t in texts])
    assert float(cosine_rows(batch, singles).min()) >= 1.0 - 1e-4


@pytest.mark.skipif(not NO_CUDA, reason="a CUDA device is visible here: nothing to refuse")
def test_the_gpu_is_refused_clearly_where_none_is_visible(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from instruct_embed.cli import main

    code = main(["serve", "--device", "cuda", "--repository", str(tmp_path / "repository"), "--no-example"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error: the cuda encoder needs a CUDA device"), err
    assert not (tmp_path / "repository" / E5).exists()  # nothing rendered that could not be served
