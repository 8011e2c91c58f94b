"""Weights to bucket counts and ranges (router.split)."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import Counter

import pytest

from router import BUCKETS
from router.split import bucket_counts, layout, percentages

Weights = list[tuple[str, int]]


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        pytest.param([("stable", 1)], [("stable", 10_000)], id="one-pool"),
        pytest.param(
            [("stable", 90), ("canary", 10)], [("stable", 9000), ("canary", 1000)], id="90-10"
        ),
        pytest.param(
            [("stable", 1), ("canary", 1)], [("stable", 5000), ("canary", 5000)], id="1-1"
        ),
        # The baseline absorbs the rounding; the canary gets exactly floor(2/3 * 10000).
        pytest.param(
            [("stable", 1), ("canary", 2)], [("stable", 3334), ("canary", 6666)], id="1-2"
        ),
        pytest.param(
            [("stable", 2), ("canary", 1)], [("stable", 6667), ("canary", 3333)], id="2-1"
        ),
        pytest.param(
            [("stable", 100), ("canary", 0)], [("stable", 10_000), ("canary", 0)], id="canary-0"
        ),
        pytest.param(
            [("stable", 0), ("canary", 100)], [("stable", 0), ("canary", 10_000)], id="promoted"
        ),
        pytest.param(
            [("s", 1), ("a", 1), ("b", 1)],
            [("s", 3334), ("a", 3333), ("b", 3333)],
            id="three-equal",
        ),
        pytest.param(
            [("s", 80), ("a", 10), ("b", 10)], [("s", 8000), ("a", 1000), ("b", 1000)], id="three"
        ),
        pytest.param(
            [("s", 1), ("a", 0), ("b", 1)],
            [("s", 5000), ("a", 0), ("b", 5000)],
            id="three-middle-0",
        ),
        # Baseline at 0: the first positive pool absorbs the rounding instead.
        pytest.param(
            [("s", 0), ("a", 1), ("b", 2)],
            [("s", 0), ("a", 3334), ("b", 6666)],
            id="three-baseline-0",
        ),
        pytest.param(
            [("s", 70), ("a", 10), ("b", 5), ("c", 15)],
            [("s", 7000), ("a", 1000), ("b", 500), ("c", 1500)],
            id="four",
        ),
        # A positive weight always gets at least one bucket, however small its share.
        pytest.param([("s", 100_000), ("c", 1)], [("s", 9999), ("c", 1)], id="tiny-share"),
    ],
)
def test_bucket_counts(weights: Weights, expected: Weights) -> None:
    assert list(bucket_counts(weights)) == expected


@pytest.mark.parametrize(
    ("weights", "order", "bounds"),
    [
        pytest.param([("stable", 1)], ("stable",), (10_000,), id="one-pool"),
        # The canary grows up from bucket 0; the baseline holds the rest.
        pytest.param(
            [("stable", 90), ("canary", 10)], ("canary", "stable"), (1000, 10_000), id="two"
        ),
        pytest.param(
            [("stable", 100), ("canary", 0)], ("canary", "stable"), (0, 10_000), id="two-zero"
        ),
        pytest.param(
            [("stable", 0), ("canary", 1)], ("canary", "stable"), (10_000, 10_000), id="promoted"
        ),
        # The 3rd pool grows down from bucket 9999; the baseline sits in the middle.
        pytest.param(
            [("s", 80), ("a", 10), ("b", 10)], ("a", "s", "b"), (1000, 9000, 10_000), id="three"
        ),
        # The 4th pool is placed after the 2nd.
        pytest.param(
            [("s", 70), ("a", 10), ("b", 5), ("c", 15)],
            ("a", "c", "s", "b"),
            (1000, 2500, 9500, 10_000),
            id="four",
        ),
        # The 5th pool is placed before the 3rd.
        pytest.param(
            [("s", 60), ("a", 10), ("b", 5), ("c", 15), ("d", 10)],
            ("a", "c", "s", "d", "b"),
            (1000, 2500, 8500, 9500, 10_000),
            id="five",
        ),
    ],
)
def test_layout(weights: Weights, order: tuple[str, ...], bounds: tuple[int, ...]) -> None:
    assert layout(weights) == (order, bounds)


@pytest.mark.parametrize(
    "weights",
    [
        [("stable", 90), ("canary", 10)],
        [("stable", 100), ("canary", 0)],
        [("stable", 0), ("canary", 3)],
        [("s", 50), ("dark", 0), ("c", 50)],
        [("s", 1), ("a", 2), ("b", 0), ("c", 3), ("d", 0)],
    ],
)
def test_bisect_over_layout_gives_each_pool_its_count(weights: Weights) -> None:
    """Every bucket maps to a pool via bisect_right; zero-weight pools own no bucket."""
    order, bounds = layout(weights)
    owners = Counter(order[bisect_right(bounds, bucket)] for bucket in range(BUCKETS))
    counts = dict(bucket_counts(weights))
    assert {name: owners.get(name, 0) for name in counts} == counts
    assert all(owners[name] == 0 for name, weight in weights if weight == 0)


def test_counts_always_sum_to_buckets() -> None:
    rng = random.Random(20240601)
    for _ in range(2000):
        size = rng.randint(1, 6)
        weights = [(f"p{i}", rng.choice([0, 0, 1, 2, 3, 7, 50, 99, 1000])) for i in range(size)]
        if all(weight == 0 for _, weight in weights):
            index = rng.randrange(size)
            weights[index] = (f"p{index}", 1)
        counts = bucket_counts(weights)
        assert sum(count for _, count in counts) == BUCKETS, weights
        total = sum(weight for _, weight in weights)
        absorber = next(i for i, (_, weight) in enumerate(weights) if weight > 0)
        for index, ((_, weight), (_, count)) in enumerate(zip(weights, counts, strict=True)):
            if weight == 0:
                assert count == 0, weights
            else:
                assert count >= 1, weights
            if index != absorber and weight > 0:
                assert count == max(1, weight * BUCKETS // total), weights
        _, bounds = layout(weights)
        assert bounds[-1] == BUCKETS
        assert list(bounds) == sorted(bounds)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        pytest.param([], "at least one pool", id="empty"),
        pytest.param([("stable", 0)], "at least one weight must be positive", id="single-zero"),
        pytest.param(
            [("stable", 0), ("canary", 0)], "at least one weight must be positive", id="all-zero"
        ),
        pytest.param([("stable", -1), ("canary", 2)], "zero or positive", id="negative-baseline"),
        pytest.param([("stable", 5), ("canary", -5)], "zero or positive", id="negative-canary"),
        # Two minimum-one buckets plus a 9999-bucket giant leave the baseline nothing.
        pytest.param([("s", 1), ("a", 10**9), ("b", 1)], "too skewed", id="too-skewed"),
    ],
)
def test_invalid_weights_raise(weights: Weights, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bucket_counts(weights)
    with pytest.raises(ValueError, match=message):
        layout(weights)


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([("stable", 90), ("canary", 10)], {"stable": 90.0, "canary": 10.0}),
        ([("stable", 9), ("canary", 1)], {"stable": 90.0, "canary": 10.0}),
        ([("stable", 1), ("canary", 2)], {"stable": 100 / 3, "canary": 200 / 3}),
        ([("a", 1), ("b", 2), ("c", 1)], {"a": 25.0, "b": 50.0, "c": 25.0}),
        ([("stable", 100), ("canary", 0)], {"stable": 100.0, "canary": 0.0}),
        ([("stable", 0), ("canary", 0)], {"stable": 0.0, "canary": 0.0}),
    ],
)
def test_percentages(weights: Weights, expected: dict[str, float]) -> None:
    assert percentages(weights) == pytest.approx(expected)
