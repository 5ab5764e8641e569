"""Gateway request mapping that needs no server: roles from input_type or the model-name suffix, base64."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from instruct_embed.gateway.app import encode_vector, resolve_model_and_role
from instruct_embed.gateway.errors import GatewayError


@pytest.mark.parametrize(
    ("model", "input_type", "expected"),
    [
        ("e5", None, ("e5", "document")),
        ("e5", "query", ("e5", "query")),
        ("e5", "passage", ("e5", "document")),
        ("e5-query", None, ("e5", "query")),
        ("e5-passage", None, ("e5", "document")),
        ("e5-passage", "query", ("e5", "query")),  # an explicit input_type wins over the suffix
    ],
)
def test_role_resolution(model: str, input_type: str | None, expected: tuple[str, str]) -> None:
    assert resolve_model_and_role(model, input_type) == expected


def test_unknown_input_type_is_a_400_naming_the_allowed_values() -> None:
    with pytest.raises(GatewayError, match="allowed: query, passage, document") as raised:
        resolve_model_and_role("e5", "question")
    assert raised.value.status == 400 and raised.value.param == "input_type"


def test_base64_is_little_endian_float32() -> None:
    vector = np.array([0.5, -1.25, 3.0], dtype=np.float32)
    decoded = np.frombuffer(base64.b64decode(encode_vector(vector, "base64")), dtype="<f4")
    assert decoded.tolist() == [0.5, -1.25, 3.0]
    assert encode_vector(vector, "float") == [0.5, -1.25, 3.0]
