"""The GPU path served end to end by the bundled Triton (cuda encoder target), side by side with eager PyTorch and
sentence-transformers on the same GPU and the same texts, plus the preprocess ceiling (null encoder).

    python -m benchmarks.gpu_served pack                      (here: writes .cache/gpu-pack, what the GPU host lacks)
    bash benchmarks/gpu_served.sh                             (on the GPU host, from a copy of this tree + the pack)
    python -m benchmarks.gpu_served run --smoke --device cpu  (here: the same code on tiny models and CPU tensors)

The GPU hosts have torch, transformers, tokenizers, numpy, grpcio and sentence-transformers, and nothing of ours:
no nvidia-pytriton, no tritonclient, no protobuf, no model hub. `pack` gathers those (the pytriton wheel, the pure
Python part of tritonclient, protobuf), each model's config.json at its published full size and its real
tokenizer files, and the SciFact texts. The weights are random (speed does not depend on their values) and are
written on the GPU host itself, in the serving precision. Served requests go over gRPC through the SDK.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu_reference import ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / ".cache" / "gpu-pack"
PYTRITON_WHEEL = "nvidia_pytriton"


@dataclass(frozen=True)
class Sized:
    """A served model at a size: its catalog name, its config.json shapes (full size, or the smoke test's)."""

    model: str
    shapes: dict[str, int]
    encoder_instances: int


# The shapes gpu_reference.py measured the eager floor with (vocab_size: the real tokenizer's, from the pack).
_SIZES = {a.name: {k: v for k, v in a.config.items() if k != "vocab_size"} for a in ARCHITECTURES}
FULL = (
    Sized("e5-large-v2", _SIZES["e5-large-v2"], encoder_instances=2),
    # 14.5 GB of bf16 weights per instance; the miniature's short position table replaced by the real one
    Sized("e5-mistral-7b-instruct", {**_SIZES["e5-mistral-7b-instruct"], "max_position_embeddings": 32768}, 1),
)
SMOKE = (
    Sized("e5-large-v2", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128), 1),
    Sized(
        "e5-mistral-7b-instruct",
        dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
        ),
        1,
    ),
)


# -- here: what the GPU host lacks ---------------------------------------------------------------------------------
def pack(out: Path, max_docs: int) -> Path:
    """Wheels and pure-Python packages, tokenizers and configs, texts: all under `out` (about 61 MB)."""
    pack_wheels(out)
    return pack_models(out, max_docs)


def pack_wheels(out: Path) -> None:
    """The pytriton wheel (installed on the host by pip) and the pure Python of tritonclient and protobuf."""
    import importlib.metadata as metadata

    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    version = metadata.version("nvidia-pytriton")
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels)]
    subprocess.run([*pip, f"nvidia-pytriton=={version}", "tritonclient==2.48.0", "protobuf"], check=True)
    site = out / "site"
    for wheel in wheels.glob("*.whl"):
        if wheel.name.startswith(PYTRITON_WHEEL):
            continue  # installed on the host by pip (its binaries need their executable bits)
        with zipfile.ZipFile(wheel) as archive:
            # tritonclient: its Python only (the perf_analyzer binaries would push the pack past the carry limit).
            names = [n for n in archive.namelist() if "/bin/" not in n]
            for name in names:
                target = site / name.split("purelib/", 1)[-1]
                if not name.endswith("/"):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(name))
        wheel.unlink()


def pack_models(out: Path, max_docs: int, texts: dict[str, list[str]] | None = None) -> Path:
    """Each model's config.json (of the real class; run() sets the full sizes) and real tokenizer files, and the
    texts: SciFact's queries and `max_docs` abstracts unless `texts` are given."""
    from benchmarks.texts import load_texts
    from instruct_embed.catalog import get_spec
    from instruct_embed.local_models.miniatures import build_miniature
    from instruct_embed.paths import wheel_cache

    for sized in FULL:
        spec = get_spec(sized.model)
        # The miniature brings the real tokenizer and a config of the real class; its tiny weights stay here.
        miniature = build_miniature(spec, wheel_cache().parent / "gpu-pack-miniatures" / sized.model, wheel_cache())
        folder = out / "models" / sized.model
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (miniature / name).exists():
                (folder / name).write_bytes((miniature / name).read_bytes())
        (folder / "config.json").write_bytes((miniature / "config.json").read_bytes())
    if texts is None:
        scifact = load_texts(max_docs)
        texts = {"queries": list(scifact.queries), "documents": list(scifact.documents)}
    (out / "texts.json").write_text(json.dumps(texts))
    return out


# -- on the GPU host (or --smoke here) ---------------------------------------------------------------------------
def random_weights(sized: Sized, pack_dir: Path, out: Path, device: str) -> Path:
    """The model's transformers folder with random weights in its serving precision, written once."""
    import torch
    from transformers import AutoConfig, AutoModel

    from instruct_embed.catalog import get_spec
    from instruct_embed.export.loading import TORCH_DTYPES

    folder = out / sized.model
    if (folder / "model.safetensors.index.json").exists() or (folder / "model.safetensors").exists():
        return folder
    source = pack_dir / "models" / sized.model
    config = AutoConfig.from_pretrained(source)
    for key, value in sized.shapes.items():
        setattr(config, key, value)
    dtype = TORCH_DTYPES[get_spec(sized.model).default_precision]
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # no fp32 copy of 7B parameters
    try:
        with torch.device(device):
            model = AutoModel.from_config(config)
    finally:
        torch.set_default_dtype(default)
    model.save_pretrained(folder, safe_serialization=True)
    for file in source.iterdir():
        if file.name != "config.json":
            (folder / file.name).write_bytes(file.read_bytes())
    del model
    return folder


def medians(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def served_spec(model: str, hf_dir: Path) -> Any:
    """The catalog's spec, with the width and length of the folder's model where it is a smoke-test one."""
    from instruct_embed.catalog import get_spec
    from instruct_embed.local_models.miniatures import miniature_spec

    spec = get_spec(model)
    hidden = json.loads((hf_dir / "config.json").read_text())["hidden_size"]
    return spec if hidden == spec.dim else miniature_spec(spec, hf_dir)


def served(model: str, hf_dir: Path, workdir: Path, texts: dict[str, list[str]], options: Any, repeats: int) -> dict:
    """Online queries (1 text per request, 64 in flight), bulk documents, query p95 under bulk load: through Triton."""
    from benchmarks.load import bulk, online_stream, queries_under_bulk_load
    from instruct_embed.repository.render import ModelArtifacts, render_model, rendered_models
    from instruct_embed.server import LocalTritonServer, ServerOptions
    from instruct_embed.server.process import free_port

    repository = workdir / f"repository-{options.target}"
    render_model(
        served_spec(model, hf_dir), ModelArtifacts(hf_dir / "tokenizer.json", hf_dir=hf_dir), repository, options
    )
    server_options = ServerOptions(
        repository=repository,
        models=rendered_models(repository, model),
        http_port=free_port(),
        grpc_port=free_port(),
        metrics_port=free_port(),
        log_file=workdir / f"tritonserver-{model}-{options.target}.log",
        ready_timeout_s=900,
    )
    with LocalTritonServer(server_options) as server:
        url = server.grpc_url
        online = [online_stream(url, "grpc", model, texts["queries"], 64).throughput() for _ in range(repeats)]
        bulk_rates = []
        for _ in range(repeats):
            seconds, vectors = bulk(url, "grpc", model, texts["documents"], concurrency=4)
            bulk_rates.append(len(vectors) / seconds)
        under = queries_under_bulk_load(url, "grpc", model, texts["documents"], texts["queries"][:50], 4, 32)
    return {
        "online_queries_per_s": medians(online),
        "bulk_documents_per_s": medians(bulk_rates),
        "query_p95_ms_under_bulk": under.p95(),
        "bulk_documents_during_probe": under.bulk_documents,
    }


def prompts(model: str, texts: Sequence[str], role: str) -> list[str]:
    from benchmarks.texts import prompted

    return prompted(model, texts, role)


def eager_floor(model: str, hf_dir: Path, documents: list[str], device: str, repeats: int) -> float:
    """Plain transformers in the serving precision, SDPA, length-sorted batches of 64: documents per second."""
    import torch
    from transformers import AutoTokenizer

    from instruct_embed.export.families import build_module

    spec = served_spec(model, hf_dir)
    module = build_module(spec, hf_dir, spec.default_precision, False, attention="sdpa").to(device)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    texts = sorted(prompts(model, documents, "document"), key=len)
    batches = [texts[i : i + 64] for i in range(0, len(texts), 64)]
    length = min(spec.max_length, 512)
    encoded = [tokenizer(b, padding=True, truncation=True, max_length=length, return_tensors="pt") for b in batches]
    rates = []
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first pass warms the kernels
            start = time.perf_counter()
            for batch in encoded:
                module(batch["input_ids"].to(device), batch["attention_mask"].to(device)).cpu()
            rates.append(len(texts) / (time.perf_counter() - start))
    return medians(rates[1:])


def sentence_transformers_rate(model: str, hf_dir: Path, documents: list[str], device: str, repeats: int) -> float:
    """sentence-transformers `encode` (batch 64) on the same folder and device, in the serving precision."""
    from sentence_transformers import SentenceTransformer, models

    spec = served_spec(model, hf_dir)
    pooling = {"mean": "mean", "cls": "cls", "last_token": "lasttoken"}[spec.pooling.value]
    length = min(spec.max_length, 512)
    transformer = models.Transformer(str(hf_dir), max_seq_length=length, model_args={"attn_implementation": "sdpa"})
    pool = models.Pooling(transformer.get_word_embedding_dimension(), pooling_mode=pooling)
    encoder = SentenceTransformer(modules=[transformer, pool, models.Normalize()], device=device)
    encoder = encoder.half() if spec.default_precision.value == "fp16" else encoder.bfloat16()
    texts = prompts(model, documents, "document")
    rates = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        encoder.encode(texts, batch_size=64)
        rates.append(len(texts) / (time.perf_counter() - start))
    return medians(rates[1:])


def machine(device: str) -> dict[str, Any]:
    import tokenizers
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "cpu"
    return {
        "device": gpu,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def run(pack_dir: Path, workdir: Path, device: str, smoke: bool, repeats: int) -> dict[str, Any]:
    from instruct_embed.repository.configs import ServingOptions
    from instruct_embed.repository.targets import EncoderTarget, TorchDevice

    texts = json.loads((pack_dir / "texts.json").read_text())
    if smoke:
        texts = {"queries": texts["queries"][:80], "documents": texts["documents"][:40]}
    results: dict[str, Any] = {"machine": machine(device), "texts": {k: len(v) for k, v in texts.items()}}
    results["weights"] = "random (speed does not depend on their values)"
    preprocess = max(1, len(os.sched_getaffinity(0)) // 2)
    for sized in SMOKE if smoke else FULL:
        hf_dir = random_weights(sized, pack_dir, workdir / "models", device)
        cuda = ServingOptions(
            target=EncoderTarget.CUDA,
            torch_device=TorchDevice(device),
            token_budget=32768,
            encoder_instances=sized.encoder_instances,
            preprocess_instances=preprocess,
        )
        row: dict[str, Any] = {"served": served(sized.model, hf_dir, workdir, texts, cuda, repeats)}
        row["eager_pytorch_documents_per_s"] = eager_floor(sized.model, hf_dir, texts["documents"], device, repeats)
        row["sentence_transformers_documents_per_s"] = sentence_transformers_rate(
            sized.model, hf_dir, texts["documents"], device, repeats
        )
        null = ServingOptions(target=EncoderTarget.NULL, preprocess_instances=preprocess)
        row["null_encoder_ceiling"] = served(sized.model, hf_dir, workdir, texts, null, repeats)
        row["null_encoder_ceiling"]["preprocess_instances"] = preprocess
        bulk = row["served"]["bulk_documents_per_s"]
        row["served_bulk_vs_eager"] = bulk / row["eager_pytorch_documents_per_s"]
        row["served_bulk_vs_sentence_transformers"] = bulk / row["sentence_transformers_documents_per_s"]
        results[sized.model] = row
        print(json.dumps({sized.model: row}, indent=1), flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="gather what the GPU host lacks into --pack")
    p.add_argument("--pack", type=Path, default=PACK)
    p.add_argument("--max-docs", type=int, default=1000)
    r = sub.add_parser("run", help="measure (on the GPU host, or --smoke --device cpu here)")
    r.add_argument("--pack", type=Path, default=PACK)
    r.add_argument("--workdir", type=Path, default=Path("/tmp/gpu-served"))
    r.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    r.add_argument("--smoke", action="store_true", help="two-layer models and a few texts: checks the code path")
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--out", type=Path, default=Path("gpu_served.json"))
    args = parser.parse_args(argv)
    if args.command == "pack":
        print(pack(args.pack, args.max_docs))
        return 0
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = run(args.pack, args.workdir, args.device, args.smoke, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
