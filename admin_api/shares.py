"""Counts as percentages that add up to exactly 100, at the precision they are shown with.

Rounding each share on its own does not: three pools with a third of the requests each show
33.3 % three times, 99.9 % in all, and a 1 : 1 : 4 split shows 16.7 + 16.7 + 66.7 = 100.1 %.
An operator reading `status` takes a total other than 100 for lost or doubled traffic. The largest remainder
method (Hamilton's) rounds every share down to the precision, then gives the units still missing,
one each, to the shares that lost the most by rounding down; ties go to the larger count (its
relative error is the smaller), then to the pool listed first, so the result depends on nothing
but the counts and their order. Exact arithmetic on
integers: no float sum decides who gets a unit.
"""

from __future__ import annotations

from collections.abc import Mapping


def shares(counts: Mapping[str, int], decimals: int = 1) -> dict[str, float]:
    """Each count's share of the total in percent, rounded to `decimals` places so that the
    shares add up to exactly 100 (all 0.0 when the total is 0), in the order of `counts`."""
    total = sum(counts.values())
    if total <= 0:
        return dict.fromkeys(counts, 0.0)
    unit = 10**decimals
    whole = 100 * unit  # 100 %, in units of the last shown decimal
    floors: dict[str, int] = {}
    remainders: list[tuple[int, int, int, str]] = []
    for index, (name, count) in enumerate(counts.items()):
        floor, remainder = divmod(count * whole, total)
        floors[name] = floor
        remainders.append((-remainder, -count, index, name))
    missing = whole - sum(floors.values())
    for *_, name in sorted(remainders)[:missing]:
        floors[name] += 1
    return {name: units / unit for name, units in floors.items()}
