"""The static int8 graph's recipe: which MatMuls stay fp32, and calibration feeds the calibrator can stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from instruct_embed.catalog import get_spec
from instruct_embed.export.calibration_texts import CALIBRATION_DOCUMENTS, CALIBRATION_QUERIES
from instruct_embed.export.static_int8 import (
    ROWS_PER_CALIBRATION_RUN,
    calibration_feeds,
    int8_graph_path,
    narrowing_matmuls,
)
from instruct_embed.runtime.tokenization import TokenBatch


def test_only_the_matmuls_that_narrow_stay_fp32() -> None:
    weights = {"up": (8, 32), "down": (32, 8), "square": (8, 8)}
    nodes = [helper.make_node("MatMul", ["x", name], [f"y_{name}"], name=f"mm_{name}") for name in weights]
    nodes.append(helper.make_node("MatMul", ["x", "x_t"], ["scores"], name="activations_only"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y_up", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(np.zeros(shape, np.float32), name) for name, shape in weights.items()],
    )
    assert narrowing_matmuls(helper.make_model(graph)) == ["mm_down"]


class FakeTokenizer:
    """Pads every prompt to the batch's longest, as PromptTokenizer.encode does; remembers what it was given."""

    def __init__(self) -> None:
        self.prompts: list = []

    def encode(self, prompts: list) -> TokenBatch:
        self.prompts = prompts
        lengths = [1 + i % 7 for i in range(len(prompts))]
        ids = np.zeros((len(prompts), max(lengths)), np.int64)
        mask = (np.arange(max(lengths))[None, :] < np.array(lengths)[:, None]).astype(np.int64)
        counts = np.array(lengths, np.int32)
        return TokenBatch(input_ids=ids, attention_mask=mask, token_type_ids=np.zeros_like(ids), token_counts=counts)


def test_calibration_feeds_are_the_calibration_texts_in_their_roles_padded_to_one_length() -> None:
    tokenizer = FakeTokenizer()
    spec = get_spec("multilingual-e5-small")
    feeds = calibration_feeds(spec, tokenizer, ["input_ids", "attention_mask"])  # type: ignore[arg-type]
    total = len(CALIBRATION_QUERIES) + len(CALIBRATION_DOCUMENTS)
    assert len(tokenizer.prompts) == total
    assert tokenizer.prompts[0].full.startswith("query: ") and tokenizer.prompts[-1].full.startswith("passage: ")
    assert sum(len(f["input_ids"]) for f in feeds) == total
    assert {f["input_ids"].shape[1] for f in feeds} == {7}, "one length: the calibrator stacks the runs"
    assert max(len(f["input_ids"]) for f in feeds) == ROWS_PER_CALIBRATION_RUN


def test_the_int8_graph_sits_beside_its_fp32_graph(tmp_path: Path) -> None:
    assert int8_graph_path(tmp_path / "model.fp32.onnx") == tmp_path / "model.fp32.int8-static.onnx"
