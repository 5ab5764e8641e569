"""PyTorch's speed for the served architectures on one GPU: a measured floor under the GPU plan's TensorRT estimates.

    python benchmarks/gpu_reference.py --out gpu_reference.json        (on a machine with a CUDA GPU)
    python benchmarks/gpu_reference.py --smoke --device cpu            (two-layer versions: checks the code path)

Each architecture is built from the shapes in its model's published config.json with random weights: speed does
not depend on the weights' values, and a GPU host without a model hub can still run it. Eager PyTorch (SDPA
attention, no compilation; one query also replayed from a CUDA graph) in the precision the TensorRT plan uses
(fp16 for e5-large-v2, bf16 for the 7B models), inputs shaped like SciFact (queries ~25 BERT tokens, ~48 with a 7B
model's instruction; abstracts ~300 tokens, already length-sorted so unpadded). Pooling and normalisation are
included as the served graphs have them. It is what an unoptimised PyTorch server would reach; the TensorRT engine
should do better, never worse.

Stand-alone on purpose (torch and transformers only): it runs on a GPU host's own Python, not the project's venv.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Architecture:
    """One served model's shapes (from its config.json) and the workload the GPU plan names for it."""

    name: str
    family: str  # "bert" (mean pooling) or a causal decoder (last-token pooling)
    config: dict[str, int]
    dtype: torch.dtype
    query_tokens: int
    document_tokens: int
    query_batches: tuple[int, ...]
    document_batches: tuple[int, ...]


ARCHITECTURES = (
    Architecture(
        "e5-large-v2",
        "bert",
        dict(
            vocab_size=30522,
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            max_position_embeddings=512,
        ),
        torch.float16,
        query_tokens=32,
        document_tokens=320,
        query_batches=(64, 256, 1024),
        document_batches=(16, 64, 128),
    ),
    Architecture(
        "e5-mistral-7b-instruct",
        "mistral",
        dict(
            vocab_size=32000,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
        ),
        torch.bfloat16,
        query_tokens=48,
        document_tokens=320,
        query_batches=(32, 128, 256),
        document_batches=(8, 32),
    ),
    Architecture(
        "gte-Qwen2-7B-instruct",
        "qwen2",
        dict(
            vocab_size=151646,
            hidden_size=3584,
            intermediate_size=18944,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
        ),
        torch.bfloat16,
        query_tokens=48,
        document_tokens=320,
        query_batches=(32, 128, 256),
        document_batches=(8, 32),
    ),
)


def build(arch: Architecture, device: str, layers: int | None) -> torch.nn.Module:
    """The bare transformer (no LM head) with random weights, in `arch.dtype`, on `device`."""
    from transformers import BertConfig, BertModel, MistralConfig, MistralModel, Qwen2Config, Qwen2Model

    classes = {
        "bert": (BertConfig, BertModel),
        "mistral": (MistralConfig, MistralModel),
        "qwen2": (Qwen2Config, Qwen2Model),
    }
    config_class, model_class = classes[arch.family]
    shapes = dict(arch.config, **({"num_hidden_layers": layers} if layers else {}))
    default = torch.get_default_dtype()
    torch.set_default_dtype(arch.dtype)  # create the weights in their serving precision: no fp32 copy of 7B on the card
    try:
        with torch.device(device):
            model = model_class(config_class(**shapes))
    finally:
        torch.set_default_dtype(default)
    return model.eval()


def embed(model: torch.nn.Module, family: str, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden states pooled as the served graph pools them (mean for BERT, last token for decoders), L2-normalised."""
    hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    if family == "bert":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1)
    else:
        pooled = hidden[:, -1]  # right-aligned rows: the EOS token is the last column
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def timed(run: Callable[[], object], device: str, repeats: int) -> list[float]:
    """Seconds per call, `repeats` times, after two warm-up calls; the device is synchronised around each call."""

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(2):
        run()
    sync()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        sync()
        seconds.append(time.perf_counter() - start)
    return seconds


def single_query_graphed(model: torch.nn.Module, arch: Architecture, device: str, repeats: int) -> dict[str, Any]:
    """One query's latency with its kernels captured in a CUDA graph and replayed: no Python and no per-kernel
    launch cost, closer to what one TensorRT enqueue pays. The mask is left out (one unpadded row: the same
    result), because building it checks values on the host, which a capture forbids. A model that cannot be
    captured reports why instead of a number."""
    ids = torch.randint(100, arch.config["vocab_size"] - 100, (1, arch.query_tokens), device=device)
    ones = torch.ones_like(ids)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            hidden = model(input_ids=ids).last_hidden_state
            return embed(FixedHidden(hidden), arch.family, ids, ones)

    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the default stream, as capture requires
            for _ in range(3):
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
    except Exception as error:  # any capture failure is a finding: reported, not fatal
        return {"single_query_ms_p50_cuda_graph": None, "cuda_graph_error": f"{type(error).__name__}: {error}"[:300]}
    return {"single_query_ms_p50_cuda_graph": 1000 * statistics.median(timed(graph.replay, device, repeats))}


class FixedHidden(torch.nn.Module):
    """A stand-in transformer that hands `embed` hidden states already computed (the graphed path pools exactly as
    the eager one; the tests give it known vectors)."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return type("Output", (), {"last_hidden_state": self.hidden})()


def measure(arch: Architecture, device: str, layers: int | None, repeats: int) -> dict[str, Any]:
    """Single-query latency, queries/s and documents/s at each batch size, and the best of each."""
    model = build(arch, device, layers)
    vocab = arch.config["vocab_size"]
    result: dict[str, Any] = {"dtype": str(arch.dtype).removeprefix("torch."), "layers": layers or "all"}
    result["attention"] = getattr(model.config, "_attn_implementation", "unknown")

    def workload(rows: int, tokens: int) -> Callable[[], object]:
        ids = torch.randint(100, vocab - 100, (rows, tokens), device=device)
        mask = torch.ones_like(ids)

        def run() -> object:
            with torch.inference_mode():
                return embed(model, arch.family, ids, mask)

        return run

    single = timed(workload(1, arch.query_tokens), device, max(repeats, 20))
    result["single_query_ms_p50"] = 1000 * statistics.median(single)
    if device.startswith("cuda"):
        result.update(single_query_graphed(model, arch, device, max(repeats, 20)))
    for kind, tokens, batches in (
        ("queries", arch.query_tokens, arch.query_batches),
        ("documents", arch.document_tokens, arch.document_batches),
    ):
        rates = {}
        for rows in batches:
            rates[rows] = rows / statistics.median(timed(workload(rows, tokens), device, repeats))
        result[f"{kind}_per_s"] = {str(rows): rate for rows, rate in rates.items()}
        result[f"{kind}_per_s_best"] = max(rates.values())
    if device.startswith("cuda"):
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    return result  # the model goes with this frame: the next architecture has the card to itself


def machine(device: str) -> dict[str, Any]:
    import transformers

    facts: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__}
    facts["python"] = platform.python_version()
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name()
        facts["cuda"] = torch.version.cuda
    else:
        facts["cpu"] = platform.processor() or platform.machine()
    return facts


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="torch device; cuda is what the numbers are for")
    parser.add_argument("--models", nargs="+", default=[a.name for a in ARCHITECTURES], help="architectures to run")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per point (the median is kept)")
    parser.add_argument("--smoke", action="store_true", help="two layers and tiny batches: checks the code path only")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    known = {a.name: a for a in ARCHITECTURES}
    unknown = sorted(set(args.models) - set(known))
    if unknown:
        parser.error(f"unknown architecture(s) {unknown}; known: {sorted(known)}")
    report: dict[str, Any] = {"machine": machine(args.device), "smoke": args.smoke, "models": {}}
    for name in args.models:
        arch = known[name]
        if args.smoke:  # small enough for a CPU in seconds; fp32 where the CPU lacks fast half kernels
            arch = Architecture(
                arch.name,
                arch.family,
                dict(arch.config, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2),
                torch.float32 if args.device == "cpu" else arch.dtype,
                arch.query_tokens,
                arch.document_tokens,
                (2,),
                (2,),
            )
        report["models"][name] = measure(
            arch, args.device, 2 if args.smoke else None, 1 if args.smoke else args.repeats
        )
        print(name, json.dumps(report["models"][name]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
