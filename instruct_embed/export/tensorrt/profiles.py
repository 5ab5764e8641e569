"""Optimisation profiles from a batching plan: batch x sequence ranges, one profile per length bucket.

Triton's `max_batch_size` is one number per model and its dynamic batcher does not look at sequence length,
so every profile accepts the full batch range; buckets only split the sequence axis, so that the kernels
TensorRT picks for short texts are tuned on short shapes. Triton's TensorRT backend keeps one execution
context per profile and runs each batch on the profile that fits it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from instruct_embed.catalog import ModelSpec
from instruct_embed.catalog.families import traits
from instruct_embed.catalog.tensors import encoder_input_names

# The longest sequence a decoder engine accepts unless asked: 7B attention at 32k tokens needs far more activation
# memory than an 80 GB card has left after the weights. The preprocess step truncates to the same length.
DECODER_MAX_SEQUENCE = 4096
# Tokens in the largest batch the default plan admits (64 x 512, the BERT-large serving point).
TOKENS_PER_BATCH = 32768
MAX_DEFAULT_BATCH = 64


class PlanError(ValueError):
    """A batching plan that no engine can serve (empty ranges, buckets beyond the model's length)."""


@dataclass(frozen=True)
class ShapeRange:
    """min <= opt <= max shapes of one input, batch axis first."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.min) == len(self.opt) == len(self.max):
            raise PlanError(f"min/opt/max ranks differ: {self.min} {self.opt} {self.max}")
        for lo, opt, hi in zip(self.min, self.opt, self.max, strict=True):
            if not 1 <= lo <= opt <= hi:
                raise PlanError(f"shapes must satisfy 1 <= min <= opt <= max: {self.min} {self.opt} {self.max}")

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.min) and all(
            lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max, strict=True)
        )


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimisation profile: a shape range per input tensor name."""

    shapes: Mapping[str, ShapeRange]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shapes", MappingProxyType(dict(self.shapes)))

    @property
    def sequence_range(self) -> tuple[int, int]:
        first = next(iter(self.shapes.values()))
        return first.min[1], first.max[1]

    @property
    def batch_range(self) -> tuple[int, int]:
        first = next(iter(self.shapes.values()))
        return first.min[0], first.max[0]

    def accepts(self, shapes: Mapping[str, Sequence[int]]) -> bool:
        return set(shapes) == set(self.shapes) and all(self.shapes[n].contains(s) for n, s in shapes.items())


@dataclass(frozen=True)
class BatchingPlan:
    """What one engine (and its Triton config) serves.

    `buckets` are ascending sequence upper bounds; the last is always `max_sequence`. Batch sizes run from 1 to
    `max_batch_size` in every bucket; `opt_batch` is the batch TensorRT tunes kernels for.
    """

    max_batch_size: int
    max_sequence: int
    buckets: tuple[int, ...]
    opt_batch: int

    @property
    def preferred_batch_sizes(self) -> tuple[int, ...]:
        """For Triton's dynamic batcher: the tuned batch and the cap."""
        return tuple(sorted({self.opt_batch, self.max_batch_size}))

    @property
    def sequence_ranges(self) -> tuple[tuple[int, int], ...]:
        lows = (1, *(b + 1 for b in self.buckets[:-1]))
        return tuple(zip(lows, self.buckets, strict=True))


def default_max_sequence(spec: ModelSpec) -> int:
    if traits(spec.family).decoder:
        return min(spec.max_length, DECODER_MAX_SEQUENCE)
    return spec.max_length


def default_max_batch_size(max_sequence: int) -> int:
    return max(1, min(MAX_DEFAULT_BATCH, TOKENS_PER_BATCH // max_sequence))


def plan_batching(
    spec: ModelSpec,
    max_batch_size: int | None = None,
    max_sequence: int | None = None,
    buckets: Sequence[int] = (),
) -> BatchingPlan:
    """The plan for `spec`; None picks the defaults above. Raises PlanError for plans no engine can serve."""
    max_sequence = default_max_sequence(spec) if max_sequence is None else max_sequence
    if not 1 <= max_sequence <= spec.max_length:
        raise PlanError(f"{spec.name}: max sequence {max_sequence} must be within 1..{spec.max_length}")
    max_batch_size = default_max_batch_size(max_sequence) if max_batch_size is None else max_batch_size
    if max_batch_size < 1:
        raise PlanError(f"{spec.name}: max batch size must be >= 1, got {max_batch_size}")
    bounds = list(buckets)
    if bounds != sorted(set(bounds)) or any(b < 1 for b in bounds):
        raise PlanError(f"{spec.name}: buckets must be distinct, positive and ascending: {list(buckets)}")
    if bounds and bounds[-1] > max_sequence:
        raise PlanError(f"{spec.name}: bucket {bounds[-1]} exceeds the max sequence {max_sequence}")
    if not bounds or bounds[-1] != max_sequence:
        bounds.append(max_sequence)
    return BatchingPlan(max_batch_size, max_sequence, tuple(bounds), max(1, max_batch_size // 2))


def _opt_sequence(low: int, high: int) -> int:
    # Midpoint of the bucket, rounded to a multiple of 8 (tensor-core friendly) but kept inside it.
    middle = (low + high + 1) // 2
    return max(low, min(high, (middle + 4) // 8 * 8))


def profiles_for_plan(plan: BatchingPlan, input_names: Sequence[str]) -> list[Profile]:
    """One profile per bucket; every input is [batch, sequence] with the same ranges."""
    profiles = []
    for low, high in plan.sequence_ranges:
        shape = ShapeRange((1, low), (plan.opt_batch, _opt_sequence(low, high)), (plan.max_batch_size, high))
        profiles.append(Profile({name: shape for name in input_names}))
    return profiles


def plan_profiles(
    spec: ModelSpec,
    max_batch_size: int | None = None,
    buckets: Sequence[int] = (),
    max_sequence: int | None = None,
) -> list[Profile]:
    """Profiles for the spec's encoder inputs under `plan_batching(spec, max_batch_size, max_sequence, buckets)`."""
    plan = plan_batching(spec, max_batch_size, max_sequence, buckets)
    return profiles_for_plan(plan, encoder_input_names(spec))


def select_profile(profiles: Sequence[Profile], shapes: Mapping[str, Sequence[int]]) -> int:
    """Index of the first profile accepting `shapes`; ValueError naming the ranges when none does."""
    for index, profile in enumerate(profiles):
        if profile.accepts(shapes):
            return index
    ranges = "; ".join(f"#{i}: batch {p.batch_range}, sequence {p.sequence_range}" for i, p in enumerate(profiles))
    raise ValueError(f"no optimisation profile accepts {dict(shapes)}; profiles: {ranges}")
