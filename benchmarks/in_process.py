"""The in-process baselines of the side-by-side run: the same model and texts without a server.

InProcessOrt is the limit on this machine: the server's own tokenizer and ONNX Runtime encoder, every text known up
front, all rows sorted by length into token-budgeted batches, no network and no process hops. SentenceTransformers
is what most people run: PyTorch, `encode` with its own length sorting and batch size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _column(values: Sequence[str]) -> np.ndarray:
    return np.array([[v.encode("utf-8")] for v in values], dtype=np.object_)


class InProcessOrt:
    """Tokenise with the runtime's Preprocessor, then run every row, sorted by length into token-budgeted batches
    (`plan_sub_batches`), on `sessions` ONNX Runtime sessions that share `threads` threads (one session with all the
    threads, or one single-threaded session per core pulling batches from a shared queue)."""

    def __init__(
        self,
        model: str,
        hf_dir: Path,
        onnx: Path,
        threads: int,
        token_budget: int = 8192,
        max_rows: int = 64,
        allow_spinning: bool = False,
        sessions: int = 1,
        run_cost_tokens: int = 0,
        precision: str = "fp32",
    ) -> None:
        from instruct_embed.catalog import get_spec
        from instruct_embed.runtime.cpu_encoder import CpuEncoder, CpuEncoderSettings
        from instruct_embed.runtime.preprocess import Preprocessor

        spec = get_spec(model)
        if spec.padding_side != "right":
            raise ValueError(f"{model}: only right-padded models are benchmarked in-process")
        config = spec.runtime_config()
        self.preprocessor = Preprocessor(config, hf_dir / "tokenizer.json")
        per_session = max(1, threads // sessions)
        settings = CpuEncoderSettings(
            intra_op_threads=per_session,
            allow_spinning=allow_spinning,
            token_budget=token_budget,
            max_rows=max_rows,
            precision=precision,
        )
        self.encoders = [CpuEncoder(str(onnx), settings) for _ in range(sessions)]
        self.token_budget, self.max_rows, self.run_cost_tokens = token_budget, max_rows, run_cost_tokens
        runtime = "ONNX Runtime fp32" if precision == "fp32" else f"OpenVINO {precision}"
        self.label = (
            f"in-process {runtime}: {sessions} session(s) x {per_session} thread(s), token budget {token_budget}, "
            f"run cost {run_cost_tokens}"
        )
        self.last_padding_efficiency = float("nan")

    def embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        """float32 [n, dim] in input order; `texts` are raw (the template for `role` is applied here)."""
        import queue
        from concurrent.futures import ThreadPoolExecutor

        from instruct_embed.runtime.sub_batching import plan_sub_batches

        feeds = self.preprocessor(_column(texts), role=_column([role] * len(texts)))
        names = self.encoders[0].input_names
        lengths = feeds["attention_mask"].sum(axis=1).astype(int).tolist()
        plan = plan_sub_batches(lengths, self.token_budget, self.max_rows, self.run_cost_tokens)
        self.last_padding_efficiency = plan.padding_efficiency
        idle: queue.SimpleQueue = queue.SimpleQueue()
        for encoder in self.encoders:
            idle.put(encoder)

        def run(batch: tuple[int, ...]) -> np.ndarray:
            rows, longest = list(batch), max(lengths[r] for r in batch)
            encoder = idle.get()  # ONNX Runtime releases the GIL: the sessions run in parallel
            try:
                return encoder.run({n: feeds[n][rows, :longest] for n in names})["embedding"]
            finally:
                idle.put(encoder)

        with ThreadPoolExecutor(len(self.encoders)) as pool:
            results = list(pool.map(run, plan.batches))
        out = np.empty((len(texts), results[0].shape[1]), dtype=np.float32)
        for batch, vectors in zip(plan.batches, results, strict=True):
            out[list(batch)] = vectors
        return out


class InWindows:
    """`embedder` given `window` texts at a time, each window finished before the next starts: the most an
    in-process encoder can do with a stream of one-text requests of which `window` are in flight, since it never
    sees further ahead. Context for the online ratio, not the issue's target (that one knows the whole stream)."""

    def __init__(self, embedder: InProcessOrt, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.embedder, self.window = embedder, window
        self.label = f"{embedder.label}; {window} texts at a time"

    def embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        w = self.window
        return np.concatenate([self.embedder.embed(texts[i : i + w], role) for i in range(0, len(texts), w)])


class SentenceTransformersBaseline:
    """sentence-transformers `encode` on CPU PyTorch, with the same templates, max length and thread count.

    `bf16_autocast`: the same model under `torch.autocast("cpu", torch.bfloat16)`, PyTorch's own use of the CPU's
    bf16 units: the like-for-like comparison for our bf16 CPU encoder."""

    def __init__(
        self, model: str, hf_dir: Path, threads: int, batch_size: int = 32, bf16_autocast: bool = False
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        from instruct_embed.catalog import get_spec

        torch.set_num_threads(threads)
        self.model_name = model
        self.model = SentenceTransformer(str(hf_dir), device="cpu")
        self.model.max_seq_length = get_spec(model).max_length
        self.batch_size = batch_size
        self.bf16_autocast = bf16_autocast
        precision = "bf16 autocast" if bf16_autocast else "fp32"
        self.label = (
            f"sentence-transformers {self._version()} (PyTorch {precision}, batch {batch_size}, {threads} threads)"
        )

    @staticmethod
    def _version() -> str:
        from importlib import metadata

        return metadata.version("sentence-transformers")

    def embed(self, texts: Sequence[str], role: str) -> np.ndarray:
        import contextlib

        import torch

        from .texts import prompted

        precision = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16_autocast else contextlib.nullcontext()
        with precision:
            vectors = self.model.encode(
                prompted(self.model_name, texts, role),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().numpy()
