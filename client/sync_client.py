"""The Python SDK: `EmbedClient(url, protocol).encode(model, texts, is_query=...)`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tritonclient.utils import InferenceServerException

from .errors import EmbedError, ServerUnavailable
from .transport import DEFAULT_URLS, classify, text_column, triton_module

SPEC_PARAMETER = "instruct_embed_spec"


@dataclass(frozen=True)
class Item:
    """A text to embed (the shape the seed's client used)."""

    text: str


@dataclass(frozen=True)
class ServedModel:
    """A served model as the server describes it (read from its config, not a local catalog)."""

    name: str
    dim: int
    max_batch_size: int
    query_template: str
    document_template: str
    tasks: dict[str, str]
    default_task: str | None
    max_length: int


def _texts(texts_or_items: str | Iterable[str | Item]) -> list[str]:
    if isinstance(texts_or_items, str):
        return [texts_or_items]
    out = []
    for entry in texts_or_items:
        if isinstance(entry, Item):
            out.append(entry.text)
        elif isinstance(entry, str):
            out.append(entry)
        else:
            raise TypeError(f"texts must be str or Item, got {type(entry).__name__}")
    return out


class EmbedClient:
    """Synchronous client over tritonclient HTTP or gRPC.

    Large inputs are split into requests of at most the model's max_batch_size and reassembled in order.
    UNAVAILABLE answers and connection failures are retried with exponential backoff.
    """

    def __init__(
        self,
        url: str | None = None,
        protocol: str = "http",
        timeout_s: float = 120.0,
        retries: int = 3,
        backoff_s: float = 0.2,
    ) -> None:
        self.protocol = protocol
        self._module = triton_module(protocol)
        self.url = url or DEFAULT_URLS[protocol]
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        if protocol == "http":
            self._client = self._module.InferenceServerClient(
                self.url, connection_timeout=timeout_s, network_timeout=timeout_s
            )
        else:
            self._client = self._module.InferenceServerClient(self.url)
        self._models: dict[str, ServedModel] = {}

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> EmbedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model(self, name: str) -> ServedModel:
        """What the server says about `name` (cached)."""
        if name not in self._models:
            try:
                config = self._call(lambda: self._client.get_model_config(name), name)
            except EmbedError:
                raise
            if self.protocol == "grpc":
                from google.protobuf.json_format import MessageToDict

                config = MessageToDict(config.config, preserving_proto_field_name=True)
            spec = json.loads(config["parameters"][SPEC_PARAMETER]["string_value"])
            self._models[name] = ServedModel(
                name=name,
                dim=int(spec["dim"]),
                max_batch_size=int(config.get("max_batch_size", 0)),
                query_template=spec["query_template"],
                document_template=spec["document_template"],
                tasks=dict(spec.get("tasks") or {}),
                default_task=spec.get("default_task"),
                max_length=int(spec["max_length"]),
            )
        return self._models[name]

    def models(self) -> list[ServedModel]:
        """Every ready embedding model on the server (ensembles carrying an instruct-embed spec)."""
        index = self._call(lambda: self._client.get_model_repository_index(), "")
        entries = [{"name": m.name, "state": m.state} for m in index.models] if self.protocol == "grpc" else index
        served = []
        for entry in entries:
            if entry.get("state") != "READY" or entry["name"].endswith(("_preprocess", "_encoder")):
                continue
            try:
                served.append(self.model(entry["name"]))
            except (EmbedError, KeyError):
                continue
        return served

    def encode(
        self,
        model: str,
        texts: str | Iterable[str | Item],
        *,
        is_query: bool = False,
        role: str | None = None,
        task: str | None = None,
        instruction: str | None = None,
        truncate: str = "end",
    ) -> np.ndarray:
        """Embed `texts`; returns float32 [n, dim] in input order.

        `role` overrides `is_query` ("query", "document" or "raw": sent as written). Raises InvalidRequest,
        ModelNotFound or ServerUnavailable carrying the server's message.
        """
        values = _texts(texts)
        served = self.model(model)
        if not values:
            return np.zeros((0, served.dim), dtype=np.float32)
        chosen_role = role or ("query" if is_query else "document")
        step = max(1, served.max_batch_size)
        chunks = [values[i : i + step] for i in range(0, len(values), step)]
        outputs = [self._infer(model, chunk, chosen_role, task, instruction, truncate)[0] for chunk in chunks]
        return np.concatenate(outputs)

    def encode_queries(self, model: str, texts: str | Iterable[str | Item], **kwargs: Any) -> np.ndarray:
        return self.encode(model, texts, role="query", **kwargs)

    def encode_documents(self, model: str, texts: str | Iterable[str | Item], **kwargs: Any) -> np.ndarray:
        return self.encode(model, texts, role="document", **kwargs)

    def _infer(
        self,
        model: str,
        texts: Sequence[str],
        role: str,
        task: str | None,
        instruction: str | None,
        truncate: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        inputs = [text_column(self._module, "TEXT", texts), text_column(self._module, "ROLE", [role] * n)]
        if task:
            inputs.append(text_column(self._module, "TASK", [task] * n))
        if instruction:
            inputs.append(text_column(self._module, "INSTRUCTION", [instruction] * n))
        if truncate != "end":
            inputs.append(text_column(self._module, "TRUNCATE", [truncate] * n))
        outputs = [self._module.InferRequestedOutput("EMBEDDING"), self._module.InferRequestedOutput("TOKEN_COUNT")]
        result = self._call(lambda: self._client.infer(model, inputs, outputs=outputs), model)
        return result.as_numpy("EMBEDDING"), result.as_numpy("TOKEN_COUNT").reshape(-1)

    def _call(self, request: Any, model: str) -> Any:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return request()
            except InferenceServerException as error:
                typed = classify(error, model)
            except (ConnectionError, OSError) as error:
                typed = ServerUnavailable(f"server unreachable at {self.url}: {error}")
            if not isinstance(typed, ServerUnavailable) or attempt == self.retries:
                raise typed
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")


def encode(
    model: str,
    texts: str | Iterable[str | Item],
    *,
    is_query: bool = False,
    url: str | None = None,
    protocol: str = "http",
    **kwargs: Any,
) -> np.ndarray:
    """One-shot helper: `encode("multilingual-e5-small", ["..."], is_query=True)`."""
    with EmbedClient(url, protocol) as client:
        return client.encode(model, texts, is_query=is_query, **kwargs)
