"""Helpers for the TensorRT tests: a tiny real tokenizer and BERT, and a recording stand-in for `tensorrt`.

The stand-in only records which TensorRT API calls the builder makes, in which order, with which arguments. What
it "serializes" is a marker string that no test treats as an engine.
"""

from __future__ import annotations

import atexit
import shutil
import string
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from instruct_embed.catalog import ModelSpec, Precision
from instruct_embed.export.sample_texts import VALIDATION_TEXTS

VOCAB_SIZE = 1000
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "</s>", "<|endoftext|>"]


def write_tiny_tokenizer(path: Path) -> Path:
    """A WordPiece tokenizer.json of exactly VOCAB_SIZE entries: specials, characters, continuation pieces, words."""
    characters = string.ascii_lowercase + string.digits + string.punctuation
    vocab = [*SPECIALS, *characters, *(f"##{c}" for c in characters)]
    for word in " ".join(VALIDATION_TEXTS).lower().split():
        word = word.strip(string.punctuation)
        if word and word not in vocab and len(vocab) < VOCAB_SIZE:
            vocab.append(word)
    vocab += [f"[unused{i}]" for i in range(VOCAB_SIZE - len(vocab))]
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.add_special_tokens(SPECIALS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def write_tiny_bert(hf_dir: Path) -> Path:
    """A 2-layer random BERT (transformers folder with tokenizer.json), as wide as TINY_MODEL's spec says (384)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=512,
    )
    BertModel(config).eval().save_pretrained(hf_dir)
    write_tiny_tokenizer(hf_dir / "tokenizer.json")
    return hf_dir


def export_graphs(spec: ModelSpec, hf_dir: Path, onnx_dir: Path, precisions: tuple[Precision, ...]) -> dict:
    from instruct_embed.export.onnx_export import ExportOptions, export_onnx

    return {
        p: export_onnx(spec, hf_dir, onnx_dir / f"model.{p.value}.onnx", ExportOptions(precision=p)) for p in precisions
    }


class _Recorder:
    def __init__(self, calls: list[tuple]) -> None:
        object.__setattr__(self, "calls", calls)


class FakeTimingCache(_Recorder):
    def __init__(self, calls: list[tuple], blob: bytes) -> None:
        super().__init__(calls)
        object.__setattr__(self, "blob", blob)

    def combine(self, other: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.calls.append(("cache.combine", other.blob, ignore_mismatch))
        object.__setattr__(self, "blob", self.blob + b"+" + other.blob)
        return True

    def serialize(self) -> bytes:
        self.calls.append(("cache.serialize",))
        return self.blob


class FakeConfig(_Recorder):
    def __init__(self, calls: list[tuple]) -> None:
        super().__init__(calls)
        object.__setattr__(self, "cache", None)

    def __setattr__(self, name: str, value: Any) -> None:
        self.calls.append((f"config.{name}=", value))
        object.__setattr__(self, name, value)

    def set_memory_pool_limit(self, pool: str, size: int) -> None:
        self.calls.append(("config.set_memory_pool_limit", pool, size))

    def add_optimization_profile(self, profile: Any) -> int:
        self.calls.append(("config.add_optimization_profile", dict(profile.shapes)))
        return len([c for c in self.calls if c[0] == "config.add_optimization_profile"]) - 1

    def create_timing_cache(self, blob: bytes) -> FakeTimingCache:
        self.calls.append(("config.create_timing_cache", bytes(blob)))
        return FakeTimingCache(self.calls, bytes(blob))

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        self.calls.append(("config.set_timing_cache", cache.blob, ignore_mismatch))
        if cache.blob.startswith(b"other-gpu"):
            return False  # as TensorRT refuses a cache from another device when ignore_mismatch is False
        object.__setattr__(self, "cache", cache)
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        self.calls.append(("config.get_timing_cache",))
        cache = FakeTimingCache(self.calls, self.cache.blob + b"+new-timings")
        return cache


class FakeTensorRT(SimpleNamespace):
    """Records the builder's calls. `inputs` maps network input names to dtype markers (int32 / int64)."""

    def __init__(self, inputs: dict[str, str], parse_ok: bool = True, build_ok: bool = True) -> None:
        calls: list[tuple] = []

        class Logger:
            WARNING = "WARNING"

            def __init__(self, severity: str) -> None:
                calls.append(("Logger", severity))

        class Profile:
            def __init__(self) -> None:
                self.shapes: dict[str, tuple] = {}

            def set_shape(self, name: str, low: tuple, opt: tuple, high: tuple) -> None:
                calls.append(("profile.set_shape", name, tuple(low), tuple(opt), tuple(high)))
                self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

        class Network:
            num_inputs = len(inputs)

            def get_input(self, index: int) -> SimpleNamespace:
                name = list(inputs)[index]
                return SimpleNamespace(name=name, dtype=inputs[name])

        class Builder:
            def __init__(self, logger: Logger) -> None:
                calls.append(("Builder",))

            def create_network(self, flags: int) -> Network:
                calls.append(("builder.create_network", flags))
                return Network()

            def create_builder_config(self) -> FakeConfig:
                calls.append(("builder.create_builder_config",))
                return FakeConfig(calls)

            def create_optimization_profile(self) -> Profile:
                calls.append(("builder.create_optimization_profile",))
                return Profile()

            def build_serialized_network(self, network: Network, config: FakeConfig) -> bytes | None:
                calls.append(("builder.build_serialized_network",))
                return b"fake-serialized-network: not an engine" if build_ok else None

        class OnnxParser:
            num_errors = 0 if parse_ok else 2

            def __init__(self, network: Network, logger: Logger) -> None:
                calls.append(("OnnxParser",))

            def parse_from_file(self, path: str) -> bool:
                calls.append(("parser.parse_from_file", path))
                return parse_ok

            def get_error(self, index: int) -> str:
                return f"fake parser error {index}"

        super().__init__(
            calls=calls,
            Logger=Logger,
            Builder=Builder,
            OnnxParser=OnnxParser,
            NetworkDefinitionCreationFlag=SimpleNamespace(STRONGLY_TYPED=1),
            MemoryPoolType=SimpleNamespace(WORKSPACE="WORKSPACE"),
            int32="int32",
            int64="int64",
        )

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


TINY_MODEL = "all-MiniLM-L6-v2"  # a BERT spec with mean pooling; its weights are replaced by write_tiny_bert's


def make_tiny_home(home: Path, precisions: tuple[Precision, ...] = (Precision.FP32, Precision.FP16)):
    """An INSTRUCT_EMBED_HOME whose TINY_MODEL has tiny BERT weights and exported ONNX graphs."""
    from instruct_embed.catalog import get_spec
    from instruct_embed.paths import model_paths

    paths = model_paths(TINY_MODEL, home)
    write_tiny_bert(paths.hf_dir)
    export_graphs(get_spec(TINY_MODEL), paths.hf_dir, paths.onnx_dir, precisions)
    return paths


_SHARED: dict[str, object] = {}


def shared_tiny_home():
    """make_tiny_home once per test process (exporting costs seconds); removed when the process exits."""
    if "paths" not in _SHARED:
        home = Path(tempfile.mkdtemp(prefix="instruct-embed-trt-"))
        atexit.register(shutil.rmtree, home, True)
        _SHARED["home"] = home
        _SHARED["paths"] = make_tiny_home(home)
    return _SHARED["paths"]
