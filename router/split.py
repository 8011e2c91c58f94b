"""Weights to bucket ranges, laid out so that sticky users move only when they must.

Theory of operation. A weighted route owns the buckets 0..9999. Each pool gets a contiguous
range whose size is its share of the total weight (Gateway API semantics: weights are
proportions, 0 means no traffic). A sticky user's bucket is fixed by the hash of their cookie,
so the layout alone decides who moves when weights change:

* The first pool in `weights` is the *baseline* (stable). It sits in the middle.
* The other pools are anchored at the two ends: the 2nd grows up from bucket 0, the 3rd grows
  down from bucket 9999, the 4th is placed after the 2nd, the 5th before the 3rd, and so on.

With two pools (stable + canary) raising the canary from 5 % to 25 % only extends its range
[0, 500) to [0, 2500): every user who was in the canary stays there, and new users come in
only from stable; lowering it only moves users out. With three pools (stable + two
candidates), users never move between the two candidates: a change to one candidate's weight
moves users between it and the baseline, and (because weights are proportions) may resize the
other candidate's range too, but only at its boundary with the baseline. When the weights are
percentages that keep summing to 100 and the baseline absorbs the change, the other candidate
does not move at all. Beyond three, pools that are not at an end shift when an inner neighbour
changes: documented, and the reason to keep canaries few.

Weight 0 yields an empty range, so such a pool is never chosen. Each pool with a positive
weight gets at least one bucket, and the pool that absorbs rounding is the baseline (or, when
the baseline's weight is 0, the first pool with a positive weight), so sizes are exact
floor(share * 10000) for everybody else: monotonic in their own weight.
"""

from __future__ import annotations

from collections.abc import Sequence

from router.spec import BUCKETS


def bucket_counts(weights: Sequence[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    """How many buckets each pool owns, in the order given; the counts sum to 10,000.

    Raises ValueError when the weights are not a valid split (negative, all zero) or are so
    skewed that 0.01 % resolution cannot honour them.
    """
    if not weights:
        raise ValueError("a weighted split needs at least one pool")
    if any(weight < 0 for _, weight in weights):
        raise ValueError("weights must be zero or positive")
    total = sum(weight for _, weight in weights)
    if total == 0:
        raise ValueError("at least one weight must be positive (all-zero sends traffic nowhere)")
    absorber = 0 if weights[0][1] > 0 else next(i for i, (_, w) in enumerate(weights) if w > 0)
    counts = [0 if weight == 0 else max(1, weight * BUCKETS // total) for _, weight in weights]
    counts[absorber] = 0
    counts[absorber] = BUCKETS - sum(counts)
    if counts[absorber] < 1:
        raise ValueError("weights too skewed for a 0.01 % split resolution")
    return tuple((name, count) for (name, _), count in zip(weights, counts, strict=True))


def layout(weights: Sequence[tuple[str, int]]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Pools in bucket order and the exclusive upper bound of each one's range.

    `bisect_right(bounds, bucket)` is then the index of the pool owning `bucket`; a pool with
    an empty range is never the answer.
    """
    counts = bucket_counts(weights)
    baseline, others = counts[0], counts[1:]
    ordered = [*others[0::2], baseline, *reversed(others[1::2])]
    bounds: list[int] = []
    upper = 0
    for _, count in ordered:
        upper += count
        bounds.append(upper)
    return tuple(name for name, _ in ordered), tuple(bounds)


def percentages(weights: Sequence[tuple[str, int]]) -> dict[str, float]:
    """Normalised shares in percent, as operators think of them."""
    total = sum(weight for _, weight in weights)
    return {name: (100.0 * weight / total if total else 0.0) for name, weight in weights}
