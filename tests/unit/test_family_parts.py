"""The family-specific pieces on their own: masks, latent attention, tensor names, rendered wiring, sparse forms."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from instruct_embed.catalog import get_spec, model_names
from instruct_embed.catalog.tensors import TOKEN_IDS, encoder_input_names, encoder_outputs
from instruct_embed.client.lexical import colbert_score, lexical_score, lexical_weights
from instruct_embed.export.latent_attention import LatentAttentionModel, LatentAttentionSettings
from instruct_embed.export.masks import config_is_causal, decoder_attention_mask
from instruct_embed.local_models.miniature_tokenizers import TokenizerSource
from instruct_embed.local_models.miniatures import MAX_LENGTH, miniature_spec, tokenizer_source
from instruct_embed.repository.configs import ServingOptions, encoder_config, ensemble_config, preprocess_config
from instruct_embed.runtime.preprocess import SPEC_PARAMETER


def test_bidirectional_mask_hides_only_padding_keys() -> None:
    mask = decoder_attention_mask(torch.tensor([[1, 1, 1, 0]]), causal=False, dtype=torch.float32)
    assert mask.shape == (1, 1, 4, 4)
    assert (mask[0, 0, :, :3] == 0).all() and (mask[0, 0, :, 3] == torch.finfo(torch.float32).min).all()


def test_causal_mask_also_hides_later_keys() -> None:
    mask = decoder_attention_mask(torch.tensor([[1, 1, 1]]), causal=True, dtype=torch.float16)
    allowed = (mask[0, 0] == 0).int()
    assert allowed.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]] and mask.dtype == torch.float16


def test_causality_comes_from_the_config() -> None:
    class Config:
        is_causal = False

    assert config_is_causal(Config()) is False
    assert config_is_causal(object()) is True  # e5-mistral's config says nothing: causal


def test_latent_attention_pools_over_pool_mask_only() -> None:
    torch.manual_seed(0)
    settings = LatentAttentionSettings(8, 2, 16, 16, 16, output_normalize=False)
    layer = LatentAttentionModel(settings).eval()
    hidden = torch.randn(2, 5, 16)
    pool_mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])
    with torch.no_grad():
        pooled = layer(hidden, pool_mask)
        changed = hidden.clone()
        changed[:, 0] += 5.0  # a token outside the pool: each token's refined state depends on itself only
        assert torch.allclose(layer(changed, pool_mask), pooled, atol=1e-6)
        refined = layer.refine(hidden)
    expected = (refined * pool_mask.unsqueeze(-1)).sum(1) / pool_mask.sum(1, keepdim=True)
    assert pooled.shape == (2, 16) and torch.allclose(pooled, expected, atol=1e-6)


def test_latent_attention_parameter_names_match_the_hub_checkpoint() -> None:
    names = set(LatentAttentionModel(LatentAttentionSettings(4, 2, 8, 8, 8)).state_dict())
    assert {
        "latents",
        "cross_attend_blocks.0.norm.weight",
        "cross_attend_blocks.0.norm_context.weight",
        "cross_attend_blocks.0.fn.to_q.weight",
        "cross_attend_blocks.0.fn.to_kv.weight",
        "cross_attend_blocks.0.fn.to_out.weight",
        "cross_attend_blocks.1.fn.net.0.weight",
        "cross_attend_blocks.1.fn.net.2.weight",
    } <= names


@pytest.mark.parametrize("name", model_names())
def test_only_latent_attention_models_take_a_pool_mask(name: str) -> None:
    spec = get_spec(name)
    options = ServingOptions()
    inputs = encoder_input_names(spec)
    assert ("pool_mask" in inputs) is (name == "NV-Embed-v2")
    pre = {t.name for t in preprocess_config(spec, options).output}
    enc = {t.name for t in encoder_config(spec, options).input}
    assert set(inputs) <= pre and set(inputs) == enc
    parameter = json.loads(preprocess_config(spec, options).parameters[SPEC_PARAMETER].string_value)
    assert tuple(parameter["encoder_inputs"]) == inputs


def test_bge_m3_ensemble_returns_three_outputs_and_the_token_ids() -> None:
    spec = get_spec("bge-m3")
    ensemble = ensemble_config(spec, ServingOptions())
    outputs = {t.name: list(t.dims) for t in ensemble.output}
    assert {k: v for k, v in outputs.items() if not k.startswith(("EMBEDDING_", "CHUNK_"))} == {
        "EMBEDDING": [-1],
        "SPARSE_WEIGHTS": [-1],
        "COLBERT_VECTORS": [-1, 1024],
        "TOKEN_COUNT": [1],
        TOKEN_IDS: [-1],
    }
    pre, enc, post = ensemble.ensemble_scheduling.step
    assert pre.output_map["input_ids"] == TOKEN_IDS and enc.input_map["input_ids"] == TOKEN_IDS
    assert dict(enc.output_map) == {
        "embedding": "full_embedding",
        "sparse_weights": "SPARSE_WEIGHTS",
        "colbert_vectors": "COLBERT_VECTORS",
    }
    assert post.output_map["EMBEDDING"] == "EMBEDDING"
    assert [o.per_token for o in encoder_outputs(spec)] == [False, True, True]


def test_dense_models_keep_the_plain_wiring() -> None:
    ensemble = ensemble_config(get_spec("e5-mistral-7b-instruct"), ServingOptions())
    assert {t.name for t in ensemble.output} == {
        "EMBEDDING",
        "EMBEDDING_BINARY",
        "EMBEDDING_UBINARY",
        "TOKEN_COUNT",
        "CHUNK_TEXT",
        "CHUNK_TOKENS",
        "CHUNK_CHARS",
    }
    assert ensemble.ensemble_scheduling.step[1].input_map["input_ids"] == "input_ids"


def test_lexical_weights_keep_each_ids_maximum() -> None:
    ids = np.array([0, 70, 70, 9, 70, 2])
    weights = np.array([0.0, 0.1, 0.3, 0.0, 0.2, 0.0], dtype=np.float32)
    result = lexical_weights(ids, weights)
    assert set(result) == {70} and result[70] == pytest.approx(0.3)
    assert lexical_score({70: 0.5, 9: 1.0}, {70: 0.2, 3: 1.0}) == pytest.approx(0.1)
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = np.array([[1.0, 0.0], [0.6, 0.8]])
    assert colbert_score(q, d) == pytest.approx((1.0 + 0.8) / 2)


def test_each_family_gets_its_real_tokenizer() -> None:
    sources = {name: tokenizer_source(get_spec(name)) for name in model_names()}
    assert sources["e5-mistral-7b-instruct"] is sources["NV-Embed-v2"] is TokenizerSource.MISTRAL_V1
    assert sources["gte-Qwen2-7B-instruct"] is TokenizerSource.QWEN2
    assert sources["bge-m3"] is sources["multilingual-e5-large-instruct"] is TokenizerSource.XLM_R
    assert sources["multilingual-e5-small"] is TokenizerSource.XLM_R
    assert sources["e5-large-v2"] is sources["bge-large-en-v1.5"] is TokenizerSource.BERT_UNCASED


def test_miniature_spec_takes_the_miniatures_dim_and_length(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    spec = miniature_spec(get_spec("gte-Qwen2-7B-instruct"), tmp_path)
    assert (spec.dim, spec.max_length, spec.trust_remote_code, spec.tolerance) == (64, MAX_LENGTH, False, 0.9999)
    assert spec.name == "gte-Qwen2-7B-instruct" and spec.append_token == "<|endoftext|>"
    (tmp_path / "config.json").write_text(json.dumps({"latent_attention_config": {"latent_dim": 32}}))
    assert miniature_spec(get_spec("NV-Embed-v2"), tmp_path).dim == 32
