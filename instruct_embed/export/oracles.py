"""The reference ("oracle") for a spec: the model card's documented usage, chosen by family."""

from __future__ import annotations

from pathlib import Path

from instruct_embed.catalog import Family, ModelSpec, Output

from .reference import Reference, ReferenceEmbedder
from .reference_bge_m3 import BgeM3Reference
from .reference_nv_embed import NVEmbedReference


def reference_for(spec: ModelSpec, hf_dir: Path, trust_remote_code: bool = False) -> Reference:
    if spec.family is Family.NV_EMBED:
        return NVEmbedReference(spec, hf_dir, trust_remote_code)
    if Output.SPARSE in spec.outputs or Output.COLBERT in spec.outputs:
        return BgeM3Reference(spec, hf_dir, trust_remote_code)
    return ReferenceEmbedder(spec, hf_dir, trust_remote_code)
