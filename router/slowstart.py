"""Where a backend in slow start is on its ramp, for people to read (the admin API, the CLI).

The balancer itself ramps in `router.pick` (compiled, per request); this module says the same
thing once per read: the weight a backend is picked by now, how far along the ramp it is and
when the ramp ends. tests/router/test_slowstart.py holds the two to the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.pick import RAMP_FLOOR
from router.snapshot import Pool


@dataclass(frozen=True, slots=True)
class Ramp:
    """A backend still ramping up after it was readmitted."""

    effective_weight: float
    """The weight the balancer picks it by now: from a tenth of its weight up to all of it."""
    progress: float
    """How far along the ramp, 0.0 .. 1.0 (by time)."""
    started: float
    """Wall time it was readmitted."""
    until: float
    """Wall time the ramp ends (its full weight from then on)."""


def ramp_of(pool: Pool, backend: str, now: float) -> Ramp | None:
    """The backend's ramp at wall time `now`, or None when it is not ramping (any more)."""
    if not pool.ramp or pool.slow_start <= 0:
        return None
    for index, started in pool.ramp:
        eligible = pool.eligible[index]
        if eligible.name != backend:
            continue
        fraction = (now - started) / pool.slow_start
        if fraction >= 1.0:
            return None
        return Ramp(
            effective_weight=eligible.weight * max(RAMP_FLOOR, fraction),
            progress=max(0.0, fraction),
            started=started,
            until=started + pool.slow_start,
        )
    return None
