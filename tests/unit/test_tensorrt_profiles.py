"""Profile planning: defaults per model size, buckets, and that the profiles cover exactly the batching plan."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from instruct_embed.catalog import Family, get_spec, model_names
from instruct_embed.catalog.tensors import encoder_input_names
from instruct_embed.export.tensorrt.profiles import (
    DECODER_MAX_SEQUENCE,
    PlanError,
    ShapeRange,
    plan_batching,
    plan_profiles,
    profiles_for_plan,
    select_profile,
)


def _covered(profiles) -> list[tuple[int, int]]:
    return sorted(p.sequence_range for p in profiles)


@pytest.mark.parametrize("name", model_names())
def test_default_plan_covers_every_batch_and_length_the_repository_sends(name: str) -> None:
    spec = get_spec(name)
    plan = plan_batching(spec)
    profiles = plan_profiles(spec)
    assert plan.max_sequence <= spec.max_length
    if spec.family in (Family.MISTRAL, Family.QWEN2, Family.QWEN3, Family.NV_EMBED):
        assert plan.max_sequence == min(spec.max_length, DECODER_MAX_SEQUENCE)
    else:
        assert plan.max_sequence == spec.max_length
    assert plan.max_batch_size * plan.max_sequence <= max(32768, plan.max_sequence)
    assert _covered(profiles) == [(1, plan.max_sequence)]
    for profile in profiles:
        assert list(profile.shapes) == list(encoder_input_names(spec))
        assert profile.batch_range == (1, plan.max_batch_size)


def test_default_batch_sizes_follow_the_token_budget() -> None:
    assert plan_batching(get_spec("e5-large-v2")).max_batch_size == 64
    assert plan_batching(get_spec("all-MiniLM-L6-v2")).max_batch_size == 64  # capped, not 128
    assert plan_batching(get_spec("bge-m3")).max_batch_size == 4  # 8192 tokens each
    assert plan_batching(get_spec("e5-mistral-7b-instruct")).max_batch_size == 8


def test_buckets_split_the_sequence_axis_into_contiguous_profiles() -> None:
    spec = get_spec("e5-large-v2")
    profiles = plan_profiles(spec, max_batch_size=32, buckets=(64, 128))
    assert _covered(profiles) == [(1, 64), (65, 128), (129, 512)]
    first = profiles[0].shapes["input_ids"]
    assert first == ShapeRange((1, 1), (16, 32), (32, 64))
    assert profiles[2].shapes["attention_mask"].opt == (16, 320)  # midpoint of 129-512, multiple of 8


def test_the_last_bucket_may_equal_the_max_sequence() -> None:
    plan = plan_batching(get_spec("e5-large-v2"), buckets=(128, 512))
    assert plan.buckets == (128, 512)
    assert plan.preferred_batch_sizes == (32, 64)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"buckets": (512, 128)}, "ascending"),
        ({"buckets": (128, 128)}, "distinct"),
        ({"buckets": (1024,)}, "exceeds"),
        ({"max_sequence": 513}, "within 1..512"),
        ({"max_batch_size": 0}, ">= 1"),
    ],
)
def test_impossible_plans_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_batching(get_spec("e5-large-v2"), **kwargs)


def test_select_profile_picks_the_bucket_and_names_the_ranges_when_none_fits() -> None:
    profiles = plan_profiles(get_spec("e5-large-v2"), max_batch_size=8, buckets=(64,))
    shapes = {"input_ids": (3, 100), "attention_mask": (3, 100)}
    assert select_profile(profiles, shapes) == 1
    assert select_profile(profiles, {"input_ids": (8, 64), "attention_mask": (8, 64)}) == 0
    with pytest.raises(ValueError, match=r"batch \(1, 8\), sequence \(65, 512\)"):
        select_profile(profiles, {"input_ids": (9, 10), "attention_mask": (9, 10)})


@given(
    max_batch=st.integers(1, 256),
    cuts=st.sets(st.integers(1, 511), max_size=5),
)
def test_every_shape_of_the_plan_has_exactly_one_profile(max_batch: int, cuts: set[int]) -> None:
    plan = plan_batching(get_spec("e5-large-v2"), max_batch_size=max_batch, buckets=tuple(sorted(cuts)))
    profiles = profiles_for_plan(plan, ("input_ids", "attention_mask"))
    for length in {1, plan.max_sequence, *cuts, *(c + 1 for c in cuts)}:
        for batch in {1, max_batch}:
            shape = {"input_ids": (batch, length), "attention_mask": (batch, length)}
            assert sum(p.accepts(shape) for p in profiles) == 1
    for profile in profiles:
        for shapes in profile.shapes.values():
            assert shapes.min <= shapes.opt <= shapes.max
