"""The tensors each model's encoder takes and returns, named on purpose and derived from the spec.

Export names the ONNX graph's inputs and outputs with these, the renderer writes them into the Triton
configs, and the preprocess step emits exactly `encoder_input_names(spec)`. Lower-case names travel between
ensemble steps; upper-case names are the public contract of the ensemble.
"""

from __future__ import annotations

from dataclasses import dataclass

from instruct_embed.catalog.enums import Output
from instruct_embed.catalog.spec import ModelSpec
from instruct_embed.runtime.contract import ATTENTION_MASK, DENSE, EMBEDDING, INPUT_IDS, POOL_MASK

__all__ = ["ATTENTION_MASK", "INPUT_IDS", "POOL_MASK", "EncoderOutput", "encoder_input_names", "encoder_outputs"]

SEQUENCE_AXIS = "sequence"  # the symbolic name of axis 1 of every per-token tensor
TOKEN_IDS = "TOKEN_IDS"  # the ensemble's name for input_ids, returned when sparse weights are (to map them)


@dataclass(frozen=True)
class EncoderOutput:
    """One output of the encoder: `name` in the graph, `public` in the ensemble.

    `per_token` outputs have axis 1 = the input's sequence axis; `dims` excludes the batch axis (-1: variable).
    """

    name: str
    public: str
    dims: tuple[int, ...]
    per_token: bool = False


def encoder_input_names(spec: ModelSpec) -> tuple[str, ...]:
    """input_ids and attention_mask, plus pool_mask for latent-attention pooling."""
    return spec.encoder_inputs


def encoder_outputs(spec: ModelSpec) -> tuple[EncoderOutput, ...]:
    """In the order the graph returns them: dense first, then sparse, then ColBERT."""
    table = {
        Output.DENSE: EncoderOutput(DENSE, EMBEDDING, (spec.dim,)),
        Output.SPARSE: EncoderOutput("sparse_weights", "SPARSE_WEIGHTS", (-1,), per_token=True),
        Output.COLBERT: EncoderOutput("colbert_vectors", "COLBERT_VECTORS", (-1, spec.dim), per_token=True),
    }
    return tuple(table[o] for o in (Output.DENSE, Output.SPARSE, Output.COLBERT) if o in spec.outputs)
