"""Weights from the Hugging Face hub (where the hub is reachable), as a local transformers folder."""

from __future__ import annotations

from pathlib import Path

from instruct_embed.catalog import ModelSpec

# Safetensors only: pickled weights of unknown origin are never loaded. The exception is BGE-M3's two small
# heads, published only as .pt state dicts: export reads them with torch.load(weights_only=True), which
# unpickles tensors and nothing else.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.py", "*.md", "1_Pooling/*"]
ALLOW_PATTERNS += ["sparse_linear.pt", "colbert_linear.pt"]


class HubUnavailable(RuntimeError):
    pass


def download_snapshot(spec: ModelSpec, out_dir: Path, trust_remote_code: bool = False) -> Path:
    """Download `spec.hf_id` into `out_dir` (safetensors and tokenizer files; .py files only with remote code)."""
    if (out_dir / "config.json").exists() and (out_dir / "tokenizer.json").exists():
        return out_dir
    from huggingface_hub import snapshot_download

    patterns = ALLOW_PATTERNS if trust_remote_code else [p for p in ALLOW_PATTERNS if p != "*.py"]
    try:
        snapshot_download(spec.hf_id, local_dir=out_dir, allow_patterns=patterns)
    except Exception as error:
        raise HubUnavailable(
            f"could not download {spec.hf_id} from the Hugging Face hub ({type(error).__name__}: {error}). "
            "Without the hub, pass --hf-dir with a local snapshot, or try --miniature"
        ) from error
    if not (out_dir / "tokenizer.json").exists():
        raise HubUnavailable(f"{spec.hf_id} has no tokenizer.json; the server needs a fast tokenizer file")
    return out_dir
