"""Two ways to embed the same texts with the same role: through a Triton server, or in-process with PyTorch.

Both sort the texts by length before batching (less padding, same vectors) and return rows in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from instruct_embed.catalog import ModelSpec
    from instruct_embed.client import EmbedClient

Progress = Callable[[int], None]


class Embedder(Protocol):
    """Embeds `texts` with the model's template for `role` ("query", "document" or "raw"); float32 [n, dim]."""

    label: str

    def embed(self, texts: Sequence[str], role: str, progress: Progress | None = None) -> np.ndarray: ...


def _length_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def _embed_sorted(
    texts: Sequence[str], batch_size: int, embed_batch: Callable[[list[str]], np.ndarray], progress: Progress | None
) -> np.ndarray:
    if not texts:
        raise ValueError("nothing to embed")
    rows: list[np.ndarray | None] = [None] * len(texts)
    for indices in _length_batches(texts, batch_size):
        vectors = embed_batch([texts[i] for i in indices])
        for i, vector in zip(indices, vectors, strict=True):
            rows[i] = vector
        if progress is not None:
            progress(len(indices))
    return np.stack([r for r in rows if r is not None]).astype(np.float32, copy=False)


class ServerEmbedder:
    """Through a running server via the SDK: the server applies the template for the role it is sent."""

    def __init__(self, client: EmbedClient, model: str, batch_size: int = 32) -> None:
        self.client = client
        self.model = model
        self.batch_size = batch_size
        self.label = f"server {client.protocol}://{client.url}"

    def embed(self, texts: Sequence[str], role: str, progress: Progress | None = None) -> np.ndarray:
        return _embed_sorted(
            texts, self.batch_size, lambda batch: self.client.encode(self.model, batch, role=role), progress
        )


class InProcessEmbedder:
    """The same computation in fp32 PyTorch (the project's ReferenceEmbedder), templates applied here by the same
    prompt-resolution function the server's preprocess model uses."""

    def __init__(self, spec: ModelSpec, hf_dir: Path, batch_size: int = 16) -> None:
        from instruct_embed.export.reference import ReferenceEmbedder
        from instruct_embed.runtime.prompting import PromptTemplates

        self.templates = PromptTemplates.from_config(spec.runtime_config())
        self.reference = ReferenceEmbedder(spec, hf_dir)
        self.batch_size = batch_size
        self.label = "in-process PyTorch fp32"

    def embed(self, texts: Sequence[str], role: str, progress: Progress | None = None) -> np.ndarray:
        from instruct_embed.runtime.prompting import resolve_prompt

        prompts = [resolve_prompt(self.templates, text, role).full for text in texts]
        return _embed_sorted(prompts, self.batch_size, self.reference.embed, progress)
