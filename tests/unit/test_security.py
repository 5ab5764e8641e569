"""The secure defaults SECURITY.md promises: loopback binds, no remote code or pickles, bounded gateway bodies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from huggingface_hub.utils import filter_repo_objects

from instruct_embed.catalog import get_spec, model_names
from instruct_embed.cli import build_parser
from instruct_embed.export.loading import RemoteCodeRefused, load_encoder
from instruct_embed.gateway.app import GatewaySettings, create_app
from instruct_embed.local_models import hub
from instruct_embed.server import LocalTritonServer, ServerOptions

ROOT = Path(__file__).resolve().parents[2]
# What hub repositories hold: safetensors and tokenizer files, and the same weights as pickles in several formats.
HUB_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "model.safetensors",
    "model-00001-of-00002.safetensors",
    "model.safetensors.index.json",
    "1_Pooling/config.json",
    "README.md",
    "modeling_nvembed.py",
    "pytorch_model.bin",
    "pytorch_model-00001-of-00002.bin",
    "training_args.bin",
    "model.pt",
    "optimizer.pt",
    "model.ckpt",
    "tf_model.h5",
    "flax_model.msgpack",
    "rng_state.pth",
    "weights.pkl",
    "model.onnx",
]
PICKLES = re.compile(r"\.(bin|pt|pth|ckpt|pkl|h5|msgpack|onnx)$")


def downloaded(trust_remote_code: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The files download_snapshot would fetch, through huggingface_hub's own pattern filter."""
    seen: dict[str, Any] = {}

    def fake_snapshot_download(repo_id: str, local_dir: Path, allow_patterns: list[str]) -> None:
        seen["patterns"] = allow_patterns
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / "tokenizer.json").write_text("{}")

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    hub.download_snapshot(get_spec("NV-Embed-v2"), tmp_path, trust_remote_code=trust_remote_code)
    return list(filter_repo_objects(HUB_FILES, allow_patterns=seen["patterns"]))


def test_hub_downloads_skip_every_pickle_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fetched = downloaded(trust_remote_code=True, monkeypatch=monkeypatch, tmp_path=tmp_path / "a")
    assert not [name for name in fetched if PICKLES.search(name)]
    assert {"model.safetensors", "model-00001-of-00002.safetensors", "tokenizer.json", "config.json"} <= set(fetched)


def test_hub_downloads_take_python_files_only_with_remote_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert "modeling_nvembed.py" not in downloaded(False, monkeypatch, tmp_path / "a")
    assert "modeling_nvembed.py" in downloaded(True, monkeypatch, tmp_path / "b")


@pytest.mark.parametrize("name", [n for n in model_names() if get_spec(n).trust_remote_code])
def test_remote_code_is_refused_without_the_flag(name: str, tmp_path: Path) -> None:
    with pytest.raises(RemoteCodeRefused, match="--trust-remote-code"):
        load_encoder(get_spec(name), tmp_path)  # refused before anything is read


def test_weights_load_from_safetensors_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import transformers

    seen: dict[str, Any] = {}

    class Loaded:
        def eval(self) -> None:
            pass

    def fake_from_pretrained(path: Path, **kwargs: Any) -> Loaded:
        seen.update(kwargs)
        return Loaded()

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", fake_from_pretrained)
    load_encoder(get_spec("multilingual-e5-small"), tmp_path)
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False


def test_prepare_trusts_no_remote_code_unless_asked() -> None:
    args = build_parser().parse_args(["prepare", "NV-Embed-v2"])
    assert args.trust_remote_code is False


def test_the_local_server_binds_loopback_by_default(tmp_path: Path) -> None:
    options = ServerOptions(repository=tmp_path)
    assert options.host == "127.0.0.1"
    command = LocalTritonServer(options, install=_FakeInstall()).command()  # type: ignore[arg-type]
    for flag in ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1"):
        assert flag in command


@pytest.mark.parametrize("command", [["serve"], ["gateway"]])
def test_serve_and_gateway_bind_loopback_by_default(command: list[str]) -> None:
    assert build_parser().parse_args(command).host == "127.0.0.1"


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    loose = [r for r in requirements if not re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[0-9][A-Za-z0-9.+\-]*", r)]
    assert not loose, f"not pinned with ==: {loose}"


@pytest.fixture()
def gateway() -> TestClient:
    # Nothing listens on port 1: these requests must be refused before the gateway talks to Triton.
    settings = GatewaySettings(triton_grpc_url="127.0.0.1:1", api_key="s3cret", max_request_bytes=1000)
    return TestClient(create_app(settings))


def test_the_gateway_refuses_a_missing_or_wrong_key(gateway: TestClient) -> None:
    body = {"model": "m", "input": "x"}
    for headers in ({}, {"Authorization": "Bearer s3cre"}, {"Authorization": "Bearer s3cret!"}):
        answer = gateway.post("/v1/embeddings", json=body, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["type"] == "authentication_error"


def test_the_gateway_compares_keys_in_constant_time() -> None:
    source = (ROOT / "instruct_embed" / "gateway" / "app.py").read_text()
    assert "hmac.compare_digest(" in source and "== settings.api_key" not in source


def test_the_gateway_refuses_large_and_unsized_bodies(gateway: TestClient) -> None:
    key = {"Authorization": "Bearer s3cret"}
    big = gateway.post("/v1/embeddings", content=b"x" * 1001, headers={**key, "Content-Type": "application/json"})
    assert big.status_code == 413 and "exceeds the limit of 1000" in big.json()["error"]["message"]

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"model": "m", '
        yield b'"input": "x"}'

    chunked = gateway.post("/v1/embeddings", content=chunks(), headers={**key, "Content-Type": "application/json"})
    assert chunked.status_code == 411


def test_health_needs_no_key_but_the_api_does(gateway: TestClient) -> None:
    assert gateway.get("/health/live").status_code == 200
    assert gateway.get("/v1/models").status_code == 401


class _FakeInstall:
    binary = Path("/opt/tritonserver")
    backend_dir = Path("/opt/backends")
    cache_dir = Path("/opt/caches")
    library_dirs: tuple[Path, ...] = ()
