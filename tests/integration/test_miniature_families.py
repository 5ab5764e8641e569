"""Each seed family exported correctly, proven on its miniature against the model card's oracle (no server).

What would make a server return wrong vectors without an error is tested directly: causal vs bidirectional
attention, the EOS at the pooled position, padding side, the instruction excluded from NV-Embed's pooling,
BGE-M3's sparse maxima and ColBERT masking, 16-bit graphs and the external-data path.
"""

from __future__ import annotations

import zipfile

import numpy as np
import onnx
import pytest
import sentencepiece
import torch
from tokenizers import Tokenizer

from instruct_embed.catalog import Precision, get_spec
from instruct_embed.export.families import build_module
from instruct_embed.export.loading import RemoteCodeRefused
from instruct_embed.export.onnx_export import ExportOptions, export_onnx
from instruct_embed.export.validate import (
    UnsupportedOnCpu,
    build_prompts,
    cosine_rows,
    server_tokenizer,
    validate_onnx,
    validation_tolerance,
)
from instruct_embed.repository.render import ModelArtifacts, render_model
from instruct_embed.runtime.cpu_encoder import CpuEncoder
from instruct_embed.runtime.prompting import Prompt, PromptTemplates, resolve_prompt
from tests.miniature_support import (
    DOCUMENTS,
    MINIATURE_MODELS,
    QUERIES,
    SERVED_MODELS,
    mini_spec,
    oracle,
    prepared,
)

pytestmark = pytest.mark.slow

# One per serving path: the gte-Qwen2 sizes, say, differ only in the real model's width.
FAMILY_MODELS = SERVED_MODELS
BIDIRECTIONAL = ("gte-Qwen2-7B-instruct", "NV-Embed-v2", "bge-m3", "e5-large-v2", "gte-modernbert-base")


TOKENIZER_TEXTS = (
    "Instruct: Given a web search query, retrieve relevant passages\nQuery: how much protein",
    "Le chat est  assis sur le tapis.  ",
    "東京は日本の首都です。",
    "\U0001f600 emoji and naïve café",
    "a\tb\n\nc",
    " leading space",
)


def graph_feed(encoder: CpuEncoder, batch) -> dict[str, np.ndarray]:
    feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, "pool_mask": batch.pool_mask}
    return {name: feeds[name] for name in encoder.input_names}


@pytest.mark.parametrize("name", MINIATURE_MODELS)
def test_exported_graph_matches_the_oracle_and_batch_equals_single(name: str) -> None:
    model = prepared(name)
    report = validate_onnx(mini_spec(name), model.hf_dir, model.onnx, reference=oracle(name))
    print(f"{name}: {report}")
    assert report.min_cosine >= 0.9999
    assert report.max_batch_vs_single <= 1e-5
    if name == "bge-m3":
        assert report.sparse_max_rel_diff is not None and report.sparse_max_rel_diff <= 1e-5
        assert report.colbert_min_cosine is not None and report.colbert_min_cosine >= 0.9999


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_server_tokenizer_agrees_with_transformers(name: str) -> None:
    # The server tokenises with the tokenizers library, the oracle with AutoTokenizer: same ids, or parity
    # would compare different inputs (transformers 4.57 warns about regexes on some of these files).
    tokenizer = Tokenizer.from_file(str(prepared(name).hf_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    auto = oracle(name).tokenizer
    for text in TOKENIZER_TEXTS:
        assert tokenizer.encode(text).ids == auto(text)["input_ids"], text


def test_mistral_tokenizer_json_equals_sentencepiece() -> None:
    from instruct_embed.local_models.miniature_tokenizers import MISTRAL_COMMON, MISTRAL_V1_MEMBER
    from instruct_embed.local_models.wheels import fetch_wheel
    from instruct_embed.paths import wheel_cache

    with zipfile.ZipFile(fetch_wheel(MISTRAL_COMMON, wheel_cache())) as zf:
        processor = sentencepiece.SentencePieceProcessor(model_proto=zf.read(MISTRAL_V1_MEMBER))
    tokenizer = Tokenizer.from_file(str(prepared("e5-mistral-7b-instruct").hf_dir / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == processor.get_piece_size() == 32000
    for text in TOKENIZER_TEXTS:
        assert tokenizer.encode(text).ids == [1, *processor.encode(text)], text  # BOS, no EOS


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_miniatures_tell_texts_apart(name: str) -> None:
    # Otherwise parity at 0.9999 would prove nothing: random tiny models can map every text to one vector.
    # As documents: a long shared instruction would dominate a mean-pooled query, in any model.
    vectors = oracle(name).embed_prompts(build_prompts(mini_spec(name), QUERIES)[len(QUERIES) :]).dense
    similarity = vectors @ vectors.T
    assert float(similarity[~np.eye(len(QUERIES), dtype=bool)].max()) < 0.99


def _hidden_states(name: str, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    module = build_module(mini_spec(name), prepared(name).hf_dir, Precision.FP32, trust_remote_code=False)
    with torch.no_grad():
        if hasattr(module, "hidden_states"):
            return module.hidden_states(ids, mask)
        if hasattr(module, "model"):  # NVEmbedGraph
            return module.model.hidden_states(ids, mask)
        return module.encoder(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("name", [*BIDIRECTIONAL, "e5-mistral-7b-instruct", "Qwen3-Embedding-0.6B"])
def test_a_later_token_changes_an_earlier_state_only_when_bidirectional(name: str) -> None:
    ids = torch.tensor([[5, 300, 301, 302, 303, 304, 305, 6]])
    changed = ids.clone()
    changed[0, 6] = 999
    mask = torch.ones_like(ids)
    before, after = _hidden_states(name, ids, mask), _hidden_states(name, changed, mask)
    earlier_moved = not torch.allclose(before[0, 2], after[0, 2], atol=1e-6)
    assert earlier_moved is (name in BIDIRECTIONAL)


def test_gte_qwen2_causal_export_would_fail_parity() -> None:
    # The parity test is sensitive to the attention direction: the same weights run causally miss the oracle.
    name = "gte-Qwen2-7B-instruct"
    module = build_module(mini_spec(name), prepared(name).hf_dir, Precision.FP32, trust_remote_code=False)
    assert module.causal is False, "is_causal: false in config.json must make the export bidirectional"
    prompts = build_prompts(mini_spec(name), QUERIES)
    batch = server_tokenizer(mini_spec(name), prepared(name).hf_dir).encode(prompts)
    ids, mask = torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask)
    expected = oracle(name).embed_prompts(prompts).dense
    with torch.no_grad():
        bidirectional = module(ids, mask).numpy()
        module.causal = True
        causal = module(ids, mask).numpy()
    assert float(cosine_rows(bidirectional, expected).min()) >= 0.9999
    assert float(cosine_rows(causal, expected).min()) < 0.999


def test_e5_mistral_pools_the_eos_and_padding_side_does_not_matter() -> None:
    name = "e5-mistral-7b-instruct"
    spec, model = mini_spec(name), prepared(name)
    prompts = build_prompts(spec, [*QUERIES, *DOCUMENTS])
    batch = server_tokenizer(spec, model.hf_dir).encode(prompts)
    last = batch.attention_mask.sum(axis=1) - 1
    eos = oracle(name).tokenizer.convert_tokens_to_ids("</s>")
    assert (batch.input_ids[np.arange(len(prompts)), last] == eos).all(), "the pooled token is the appended EOS"
    assert batch.input_ids.shape[1] == spec.max_length, "the long text is truncated and still ends with EOS"
    texts = [p.full for p in prompts]
    right, left = oracle(name).embed(texts, "right"), oracle(name).embed(texts, "left")
    assert float(cosine_rows(right, left).min()) >= 0.9999


def test_qwen3_right_padded_batch_equals_single_and_the_cards_left_padding() -> None:
    # Qwen3-Embedding's card pads left and pools position -1; the export pads right and gathers the last real
    # token. Causal attention and rotary positions (relative) make the two the same vector.
    name = "Qwen3-Embedding-0.6B"
    spec, model = mini_spec(name), prepared(name)
    prompts = build_prompts(spec, [*QUERIES, *DOCUMENTS])
    batch = server_tokenizer(spec, model.hf_dir).encode(prompts)
    assert len(set(batch.attention_mask.sum(axis=1).tolist())) > 1, "the batch must need padding"
    end = oracle(name).tokenizer.convert_tokens_to_ids("<|endoftext|>")
    last = batch.attention_mask.sum(axis=1) - 1
    assert (batch.input_ids[np.arange(len(prompts)), last] == end).all(), "the pooled token is <|endoftext|>"
    assert prompts[0].full.startswith("Instruct: Given a web search query") and "\nQuery:how" in prompts[0].full
    right = _graph_embeddings(name, prompts)
    singles = np.concatenate([_graph_embeddings(name, [p]) for p in prompts])
    left = oracle(name).embed([p.full for p in prompts], "left")
    assert float(cosine_rows(right, singles).min()) >= 0.9999
    assert float(cosine_rows(right, left).min()) >= 0.9999


def _graph_embeddings(name: str, prompts: list[Prompt]) -> np.ndarray:
    """The exported graph run by ONNX Runtime on the server tokenizer's right-padded batch."""
    import onnxruntime as ort

    spec, model = mini_spec(name), prepared(name)
    batch = server_tokenizer(spec, model.hf_dir).encode(prompts)
    session = ort.InferenceSession(str(model.onnx), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
    return session.run(["embedding"], {i.name: feeds[i.name] for i in session.get_inputs()})[0]


def test_nv_embed_instruction_changes_the_vector_but_is_not_pooled() -> None:
    name = "NV-Embed-v2"
    spec, model = mini_spec(name), prepared(name)
    templates = PromptTemplates.from_config(spec.runtime_config())
    text = QUERIES[0]
    prompts = [
        resolve_prompt(templates, text, "query", instruction="Given a question, retrieve passages that answer it"),
        resolve_prompt(templates, text, "query", instruction="Classify the sentiment of the given review"),
    ]
    tokenizer = server_tokenizer(spec, model.hf_dir)
    batch = tokenizer.encode(prompts)
    expected = oracle(name).tokenize(prompts)
    assert batch.pool_mask is not None
    assert np.array_equal(batch.pool_mask, expected["pool_mask"].numpy()), "the card's pool_mask"
    instruction_tokens = (batch.attention_mask - batch.pool_mask).sum(axis=1)
    assert (instruction_tokens > 5).all()
    encoder = CpuEncoder(str(model.onnx))
    served = encoder.run(graph_feed(encoder, batch))["embedding"]
    assert float(cosine_rows(served, oracle(name).embed_prompts(prompts).dense).min()) >= 0.9999
    assert float(cosine_rows(served[:1], served[1:])[0]) < 0.9999, "the instruction reaches the text by attention"
    pooled_all = encoder.run({**graph_feed(encoder, batch), "pool_mask": batch.attention_mask})["embedding"]
    assert float(cosine_rows(pooled_all, served).max()) < 0.9999, "pooling the instruction would change it"


def test_nv_embed_graph_is_bidirectional_through_onnx() -> None:
    # Pool one early position only: its vector moves with a later token only if attention looks ahead.
    encoder = CpuEncoder(str(prepared("NV-Embed-v2").onnx))
    ids = np.array([[1, 300, 301, 302, 303, 304, 2], [1, 300, 301, 302, 303, 999, 2]], dtype=np.int64)
    mask = np.ones_like(ids)
    pool = np.zeros_like(ids)
    pool[:, 2] = 1
    out = encoder.run({"input_ids": ids, "attention_mask": mask, "pool_mask": pool})["embedding"]
    assert float(cosine_rows(out[:1], out[1:])[0]) < 0.9999


def test_bge_m3_sparse_maxima_and_colbert_masking() -> None:
    name = "bge-m3"
    spec, model = mini_spec(name), prepared(name)
    texts = ["the the the cat sat", "x", DOCUMENTS[0]]
    prompts = build_prompts(spec, texts)[: len(texts)]
    batch = server_tokenizer(spec, model.hf_dir).encode(prompts)
    encoder = CpuEncoder(str(model.onnx))
    out = encoder.run(graph_feed(encoder, batch))
    expected = oracle(name).embed_prompts(prompts)
    assert expected.sparse is not None and expected.colbert is not None
    specials = set(oracle(name).unused_tokens)
    for row, count in enumerate(batch.token_counts.tolist()):
        ids, weights = batch.input_ids[row], out["sparse_weights"][row]
        assert not weights[count:].any() and all(weights[i] == 0 for i in range(count) if ids[i] in specials)
        for token, weight in expected.sparse[row].items():
            positions = np.flatnonzero(ids[:count] == token)
            assert abs(float(weights[positions].max()) - weight) <= 1e-5, "the oracle's per-token maximum"
        colbert = out["colbert_vectors"][row]
        assert np.allclose(np.linalg.norm(colbert[1:count], axis=1), 1.0, atol=1e-5)
        assert not colbert[0].any() and not colbert[count:].any()
        assert float(np.sum(colbert[1:count] * expected.colbert[row], axis=1).min()) >= 0.9999
    the = oracle(name).tokenizer.convert_tokens_to_ids("▁the")
    assert (batch.input_ids[0] == the).sum() == 3, "a repeated token"
    assert len(expected.sparse[0]) >= 2 and len(expected.sparse[2]) >= 5, "the miniature's head weighs tokens"


@pytest.mark.parametrize("name", ["e5-mistral-7b-instruct", "gte-Qwen2-7B-instruct", "NV-Embed-v2", "bge-m3"])
def test_fp16_graph_keeps_fp32_outputs_and_parity(name: str, tmp_path) -> None:
    spec, model = mini_spec(name), prepared(name)
    path = export_onnx(spec, model.hf_dir, tmp_path / "model.fp16.onnx", ExportOptions(precision=Precision.FP16))
    graph = onnx.load(str(path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)
    assert {o.type.tensor_type.elem_type for o in graph.graph.output} == {onnx.TensorProto.FLOAT}
    report = validate_onnx(spec, model.hf_dir, path, tolerance=validation_tolerance(spec, Precision.FP16))
    print(f"{name} fp16: {report}")
    assert report.min_cosine >= 0.999


def test_bf16_graph_exports_and_validates_where_the_cpu_has_bf16_units(tmp_path) -> None:
    name = "e5-mistral-7b-instruct"
    spec, model = mini_spec(name), prepared(name)
    path = export_onnx(spec, model.hf_dir, tmp_path / "model.bf16.onnx", ExportOptions(precision=Precision.BF16))
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert any(t.data_type == onnx.TensorProto.BFLOAT16 for t in graph.graph.initializer)
    assert {o.type.tensor_type.elem_type for o in graph.graph.output} == {onnx.TensorProto.FLOAT}
    try:
        report = validate_onnx(spec, model.hf_dir, path, tolerance=validation_tolerance(spec, Precision.BF16))
    except UnsupportedOnCpu as error:
        pytest.skip(f"no bf16 kernels in ONNX Runtime's CPU provider, no bf16 units on this CPU: {str(error)[:120]}")
    assert report.min_cosine >= 0.999


def test_external_data_path_round_trips(tmp_path) -> None:
    name = "NV-Embed-v2"
    spec, model = mini_spec(name), prepared(name)
    path = export_onnx(spec, model.hf_dir, tmp_path / "model.onnx", ExportOptions(external_data_threshold=0))
    data = path.with_name("model.onnx.data")
    assert data.exists() and data.stat().st_size > path.stat().st_size * 10
    report = validate_onnx(spec, model.hf_dir, path, reference=oracle(name))
    assert report.min_cosine >= 0.9999
    folders = render_model(spec, ModelArtifacts(model.hf_dir / "tokenizer.json", path), tmp_path / "repository")
    assert (folders[2] / "1" / "model.onnx.data").exists(), "the side file travels with the rendered graph"


def test_the_real_nv_embed_needs_the_remote_code_opt_in() -> None:
    hf_dir = prepared("NV-Embed-v2").hf_dir
    with pytest.raises(RemoteCodeRefused):
        build_module(get_spec("NV-Embed-v2"), hf_dir, Precision.FP32, trust_remote_code=False)
    assert build_module(get_spec("NV-Embed-v2"), hf_dir, Precision.FP32, trust_remote_code=True) is not None
