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
CHUNK = "CHUNK"  # BYTES [1] per row: windows | mean (CHUNK_MODES); unset: one vector per text, cut per TRUNCATE
CHUNK_OVERLAP = "CHUNK_OVERLAP"  # INT32 [1] per row: text tokens two neighbouring windows share
OPTIONAL_TEXT_INPUTS = (ROLE, TASK, INSTRUCTION, TRUNCATE, INSTRUCTION_KIND, CHUNK)
OPTIONAL_INT_INPUTS = (DIMENSIONS, CHUNK_OVERLAP)
OPTIONAL_INPUTS = (*OPTIONAL_TEXT_INPUTS, *OPTIONAL_INT_INPUTS)
# Tensors from the preprocess step to the encoder (lower case: between steps only); pool_mask is attention_mask
# with the instruction tokens zeroed, for latent-attention pooling (NV-Embed).
INPUT_IDS = "input_ids"
ATTENTION_MASK = "attention_mask"
POOL_MASK = "pool_mask"
# The encoder's dense vector, and its cut in a Matryoshka model's postprocess step.
DENSE = "embedding"
# From the preprocess step to the postprocess step: the size each row is cut to, and the output row each encoder row
# belongs to (a text's windows share one in CHUNK mean; otherwise each row is its own).
SIZES = "dimensions"
OUTPUT_ROW = "output_row"
# Outputs every ensemble returns.
EMBEDDING = "EMBEDDING"
TOKEN_COUNT = "TOKEN_COUNT"
# Per window in CHUNK windows (one per text otherwise): the text it comes from, its [start, end) in the text's own
# tokens (no specials, no template), and its [start, end) in the text's characters.
CHUNK_TEXT = "CHUNK_TEXT"
CHUNK_TOKENS = "CHUNK_TOKENS"
CHUNK_CHARS = "CHUNK_CHARS"
CHUNK_OUTPUTS = (CHUNK_TEXT, CHUNK_TOKENS, CHUNK_CHARS)

# The vector's storage types (NIM's and Cohere's embedding_type names), each its own ensemble output, so a caller
# asks for the one it stores and only those bytes cross the wire. int8 / uint8: each component mapped to 256 steps
# of that dimension's range, calibrated once when the model is prepared (quantization.py); binary / ubinary: the
# components' signs, 8 per byte, first component in the highest bit (numpy.packbits), binary offset by -128.
FLOAT, INT8, UINT8, BINARY, UBINARY = "float", "int8", "uint8", "binary", "ubinary"
EMBEDDING_TYPES = (FLOAT, INT8, UINT8, BINARY, UBINARY)
CALIBRATED_TYPES = (INT8, UINT8)  # served only where the repository holds the model's calibrated ranges
EMBEDDING_OUTPUTS = {
    FLOAT: EMBEDDING,
    INT8: "EMBEDDING_INT8",
    UINT8: "EMBEDDING_UINT8",
    BINARY: "EMBEDDING_BINARY",
    UBINARY: "EMBEDDING_UBINARY",
}

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
# CHUNK: a text over the model's limit is embedded as token windows (each with the text's template) instead of
# being cut; windows returns every window's vector, mean one vector per text (the windows' mean, renormalised).
WINDOWS, MEAN = "windows", "mean"
CHUNK_MODES = (WINDOWS, MEAN)
DEFAULT_CHUNK_OVERLAP = 32

# The Triton models behind one ensemble `name`: `name_preprocess`, `name_encoder` and `name_postprocess` (the
# Matryoshka cut, CHUNK mean, the storage types), in the order a request passes them.
PREPROCESS, ENCODER, POSTPROCESS = "preprocess", "encoder", "postprocess"
STEPS = (PREPROCESS, ENCODER, POSTPROCESS)

# The config parameter that carries the model's spec (templates, tasks, tokenizer settings) as JSON: read by the
# preprocess step, and by clients to learn what a served model accepts; the ensemble's also lists its
# EMBEDDING_TYPES under this key.
SPEC_PARAMETER = "instruct_embed_spec"
SERVED_TYPES_KEY = "embedding_types"
# The ensemble's spec parameter also says what the encoder computes in ("bf16 (OpenVINO)") and why (auto's reason).
ENCODER_PRECISION_KEY = "encoder_precision"
PRECISION_CHOICE_KEY = "precision_choice"
# The postprocess step's file of calibrated int8 ranges, in its version folder.
INT8_RANGES_FILE = "int8_ranges.json"


def step_name(model: str, step: str) -> str:
    """The Triton model that runs `step` of the ensemble `model`."""
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; allowed: {', '.join(STEPS)}")
    return f"{model}_{step}"


def is_step_name(name: str) -> bool:
    """Whether `name` names an ensemble's step rather than an ensemble."""
    return name.endswith(tuple(f"_{step}" for step in STEPS))
