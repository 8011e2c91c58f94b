"""Choosing a backend inside a pool: weighted power of two choices on in-flight requests.

Two candidates are drawn at random in proportion to their weights, and the one with fewer
in-flight requests per unit of weight wins (Envoy's least-request balancer, Mitzenmacher's
"power of two choices"). It follows the weights when backends are equally fast and steers away
from a slow or stuck backend without any shared counter beyond the in-flight counts the data
plane keeps anyway. Draws are with replacement; when both draws are the same backend it is
chosen, as in Envoy.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Sequence
from itertools import accumulate
from typing import Final, Protocol

from router.snapshot import Pool


class Loaded(Protocol):
    """Anything that knows how many requests a backend has in flight."""

    @property
    def inflight(self) -> int: ...


def pick_backend(
    pool: Pool,
    loads: Sequence[Loaded],
    roll: int,
    exclude: Collection[int] = (),
    now: float = 0.0,
) -> int | None:
    """The index into `pool.eligible` of the backend to use, or None when there is none.

    `loads[i]` is the load of `pool.eligible[i]`. `roll` is a random non-negative integer of at
    least 64 bits (its low and high 32 bits make the two draws). `exclude` lists indices already
    tried (a retry goes to another backend when there is one). `now` (wall time) matters only
    while a backend of the pool is in slow start; 0 means "no clock", i.e. full weights.
    """
    eligible = pool.eligible
    count = len(eligible)
    if count == 0 or (exclude and all(index in exclude for index in range(count))):
        return None
    if count == 1:
        return 0
    weights: Sequence[float]
    if pool.ramp and now and now < pool.ramp_until:
        weights, ramped = _ramped(pool, now)
        top = ramped[-1]
        # min(): float rounding could land exactly on the total.
        first = min(count - 1, bisect_right(ramped, (roll & 0xFFFF_FFFF) / 2**32 * top))
        second = min(count - 1, bisect_right(ramped, ((roll >> 32) & 0xFFFF_FFFF) / 2**32 * top))
    else:
        weights = pool.weights
        cumulative = pool.cumulative
        total = cumulative[-1]
        first = bisect_right(cumulative, ((roll & 0xFFFF_FFFF) * total) >> 32)
        second = bisect_right(cumulative, (((roll >> 32) & 0xFFFF_FFFF) * total) >> 32)
    if exclude:
        first = _next_allowed(first, count, exclude)
        second = _next_allowed(second, count, exclude)
    if first == second:
        return first
    # Compare inflight/weight without division: a/wa <= b/wb  <=>  a*wb <= b*wa.
    if loads[first].inflight * weights[second] <= loads[second].inflight * weights[first]:
        return first
    return second


RAMP_FLOOR: Final = 0.1
"""A backend in slow start begins at a tenth of its weight (Envoy's min_weight_percent)."""


def _ramped(pool: Pool, now: float) -> tuple[list[float], list[float]]:
    """Effective weights while some backends ramp up linearly over `pool.slow_start` seconds."""
    weights: list[float] = [float(backend.weight) for backend in pool.eligible]
    for index, started in pool.ramp:
        fraction = (now - started) / pool.slow_start
        if fraction < 1.0:
            weights[index] *= max(RAMP_FLOOR, fraction)
    return weights, list(accumulate(weights))


def _next_allowed(index: int, count: int, exclude: Collection[int]) -> int:
    while index in exclude:
        index = (index + 1) % count
    return index
