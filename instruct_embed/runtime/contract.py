"""The vocabulary a served model and its callers share, defined once.

The preprocess step checks requests against these names, the renderer writes them into the Triton configs, and
the SDK, CLI and gateway send them. It lives in the runtime package because rendering copies that package into
every Python model, where nothing else of instruct_embed can be imported (see __init__.py).
"""

from __future__ import annotations

# Per-text request inputs of every ensemble (KServe names, upper case: the public contract).
TEXT = "TEXT"
ROLE = "ROLE"
TASK = "TASK"
INSTRUCTION = "INSTRUCTION"
TRUNCATE = "TRUNCATE"
INSTRUCTION_KIND = "INSTRUCTION_KIND"
DIMENSIONS = "DIMENSIONS"  # INT32 [1] per row: the Matryoshka size to cut EMBEDDING to
OPTIONAL_TEXT_INPUTS = (ROLE, TASK, INSTRUCTION, TRUNCATE, INSTRUCTION_KIND)
OPTIONAL_INPUTS = (*OPTIONAL_TEXT_INPUTS, DIMENSIONS)
# Tensors from the preprocess step to the encoder (lower case: between steps only); pool_mask is attention_mask
# with the instruction tokens zeroed, for latent-attention pooling (NV-Embed).
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
POOL_MASK = "pool_mask"
# The encoder's dense vector, and its cut in a Matryoshka model's postprocess step.
DENSE = "embedding"
# From the preprocess step to a Matryoshka model's postprocess step: the size each row is cut to.
SIZES = "dimensions"
# Outputs every ensemble returns.
EMBEDDING = "EMBEDDING"
TOKEN_COUNT = "TOKEN_COUNT"

# The slots of a card's templates: a template is a prefix, then the text; `{task}` takes the task's instruction.
TEXT_SLOT = "{text}"
TASK_SLOT = "{task}"

# ROLE: which of the card's templates a text gets; raw: none, the text is sent as written.
ROLES = ("query", "document", "raw")
DEFAULT_ROLE = "document"
# TRUNCATE: which end of an over-long text is cut to the model's limit; none: refuse it instead.
TRUNCATE_MODES = ("end", "start", "none")
DEFAULT_TRUNCATE = "end"
# INSTRUCTION_KIND: retrieval (queries get the instruction-bearing template, documents their own) or symmetric
# (STS, classification, clustering: every text gets the model's symmetric template, whatever its role).
RETRIEVAL, SYMMETRIC = "retrieval", "symmetric"
INSTRUCTION_KINDS = (RETRIEVAL, SYMMETRIC)

# The Triton models behind one ensemble `name`: `name_preprocess`, `name_encoder` and, for a Matryoshka model,
# `name_postprocess`, in the order a request passes them.
PREPROCESS, ENCODER, POSTPROCESS = "preprocess", "encoder", "postprocess"
STEPS = (PREPROCESS, ENCODER, POSTPROCESS)

# The config parameter that carries the model's spec (templates, tasks, tokenizer settings) as JSON: read by the
# preprocess step, and by clients to learn what a served model accepts.
SPEC_PARAMETER = "instruct_embed_spec"


def step_name(model: str, step: str) -> str:
    """The Triton model that runs `step` of the ensemble `model`."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; allowed: {', '.join(STEPS)}")
    return f"{model}_{step}"


def is_step_name(name: str) -> bool:
    """Whether `name` names an ensemble's step rather than an ensemble."""
    return name.endswith(tuple(f"_{step}" for step in STEPS))
