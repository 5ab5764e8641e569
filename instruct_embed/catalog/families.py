"""Every architecture family's traits in one table, read by export, TensorRT, rendering and the miniatures.

Adding a family is one `FamilyTraits` entry here (plus its tests); a model is then a catalog spec naming it.
Class names are strings so that the catalog stays importable without transformers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from instruct_embed.catalog.enums import Family, Precision


@dataclass(frozen=True)
class MiniatureRecipe:
    """How a miniature of the family is built: the real transformers classes at a tiny size.

    `config` holds the settings that are the real checkpoint's apart from size; `token_ids` maps a config field
    to the token whose id it takes in the miniature's tokenizer, with the id to use where that token is absent.
    """

    tokenizer: str  # a TokenizerSource value (local_models/miniature_tokenizers.py)
    config: Mapping[str, Any] = field(default_factory=dict)
    token_ids: Mapping[str, tuple[str, int | None]] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    positions_after_padding: bool = False  # XLM-R counts positions from the padding index: max_length + 2 rows
    # The tensors the real tokenizer returns, where they differ from its source's (ModernBERT takes no token types).
    model_input_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("config", "token_ids", "model_kwargs"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


@dataclass(frozen=True)
class FamilyTraits:
    """What a family is, for every stage.

    A decoder family is a causal LLM (or one made bidirectional) pooled at its appended end token: its
    activations overflow fp16's range, so engines are bf16, and its TensorRT profiles stop at a shorter length.
    """

    architecture: str  # the stock transformers model class export loads (never the hub repository's code)
    config_class: str
    decoder: bool
    engine_precision: Precision  # the TensorRT engine's default
    ort_fusable: bool  # optimum's ONNX Runtime transformer fusion knows the model type
    miniature: MiniatureRecipe

    @property
    def fp16_overflows(self) -> bool:
        return self.decoder


_NO_POOLER = {"add_pooling_layer": False}

FAMILIES: Mapping[Family, FamilyTraits] = MappingProxyType(
    {
        Family.BERT: FamilyTraits(
            architecture="BertModel",
            config_class="BertConfig",
            decoder=False,
            engine_precision=Precision.FP16,
            ort_fusable=True,
            miniature=MiniatureRecipe(
                tokenizer="bert_uncased",
                config={"max_position_embeddings": 512},
                token_ids={"pad_token_id": ("[PAD]", 0)},
                model_kwargs=_NO_POOLER,
            ),
        ),
        Family.XLM_ROBERTA: FamilyTraits(
            architecture="XLMRobertaModel",
            config_class="XLMRobertaConfig",
            decoder=False,
            engine_precision=Precision.FP16,
            ort_fusable=True,
            miniature=MiniatureRecipe(
                tokenizer="xlm_r",
                token_ids={
                    "pad_token_id": ("<pad>", None),
                    "bos_token_id": ("<s>", None),
                    "eos_token_id": ("</s>", None),
                },
                model_kwargs=_NO_POOLER,
                positions_after_padding=True,
            ),
        ),
        Family.MODERNBERT: FamilyTraits(
            architecture="ModernBertModel",
            config_class="ModernBertConfig",
            decoder=False,
            engine_precision=Precision.FP16,
            ort_fusable=False,  # optimum 2.1's fusion does not know modernbert
            miniature=MiniatureRecipe(
                # ModernBERT's own BPE ships in no PyPI wheel; the WordPiece has the same [CLS] ... [SEP] frame.
                tokenizer="bert_uncased",
                # gte-modernbert-base: 8192 positions, a 128-token local window, global attention every 3rd layer.
                config={
                    "max_position_embeddings": 8192,
                    "local_attention": 128,
                    "global_attn_every_n_layers": 3,
                    "reference_compile": False,
                },
                token_ids={
                    "pad_token_id": ("[PAD]", None),
                    "cls_token_id": ("[CLS]", None),
                    "sep_token_id": ("[SEP]", None),
                    "bos_token_id": ("[CLS]", None),
                    "eos_token_id": ("[SEP]", None),
                },
                model_input_names=("input_ids", "attention_mask"),
            ),
        ),
        Family.MISTRAL: FamilyTraits(
            architecture="MistralModel",
            config_class="MistralConfig",
            decoder=True,
            engine_precision=Precision.BF16,
            ort_fusable=False,
            miniature=MiniatureRecipe(
                tokenizer="mistral_v1",
                # Mistral-7B-v0.1's settings apart from size: rope theta 1e4, a 4096-token sliding window.
                config={"max_position_embeddings": 32768, "rope_theta": 10000.0, "sliding_window": 4096},
                token_ids={"bos_token_id": ("<s>", None), "eos_token_id": ("</s>", None)},
            ),
        ),
        Family.QWEN2: FamilyTraits(
            architecture="Qwen2Model",
            config_class="Qwen2Config",
            decoder=True,
            engine_precision=Precision.BF16,
            ort_fusable=False,
            miniature=MiniatureRecipe(
                tokenizer="qwen2",
                # gte-Qwen2's released config carries is_causal: false; the export reads it from there.
                config={
                    "max_position_embeddings": 32768,
                    "rope_theta": 1000000.0,
                    "use_sliding_window": False,
                    "is_causal": False,
                },
                token_ids={"bos_token_id": ("<|endoftext|>", None), "eos_token_id": ("<|endoftext|>", None)},
            ),
        ),
        Family.QWEN3: FamilyTraits(
            architecture="Qwen3Model",
            config_class="Qwen3Config",
            decoder=True,
            engine_precision=Precision.BF16,
            ort_fusable=False,
            miniature=MiniatureRecipe(
                # Qwen3 keeps Qwen2's byte-level BPE and <|endoftext|> (id 151643).
                tokenizer="qwen2",
                # Qwen3-Embedding's settings apart from size: rope theta 1e6, no sliding window, causal attention;
                # head_dim is explicit in Qwen3 configs (128 in the real ones, hidden / heads here).
                config={
                    "max_position_embeddings": 32768,
                    "rope_theta": 1000000.0,
                    "use_sliding_window": False,
                    "head_dim": 16,
                },
                token_ids={"bos_token_id": ("<|endoftext|>", None), "eos_token_id": ("<|endoftext|>", None)},
            ),
        ),
        Family.NV_EMBED: FamilyTraits(
            architecture="NVEmbedModel",  # ported in instruct_embed/export/nv_embed.py: the hub's class is remote code
            config_class="MistralConfig",
            decoder=True,
            engine_precision=Precision.BF16,
            ort_fusable=False,
            miniature=MiniatureRecipe(
                tokenizer="mistral_v1",
                config={"max_position_embeddings": 32768, "rope_theta": 10000.0, "sliding_window": 4096},
                token_ids={"bos_token_id": ("<s>", None), "eos_token_id": ("</s>", None)},
            ),
        ),
    }
)


def traits(family: Family) -> FamilyTraits:
    return FAMILIES[family]
