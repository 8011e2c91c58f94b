"""Where a readmitted backend is on its slow-start ramp, as the admin API shows it: the same
numbers the balancer (router.pick) picks by."""

from __future__ import annotations

import pytest

from router import BackendSpec, PoolSpec, RouteSpec, Spec, build_snapshot
from router.pick import _ramped
from router.slowstart import ramp_of

SPEC = Spec(
    (
        PoolSpec(
            "app",
            (
                BackendSpec("app-0", "127.0.0.1", 9000, weight=4),
                BackendSpec("app-1", "127.0.0.1", 9001, weight=10),
            ),
            slow_start=10.0,
        ),
        PoolSpec("plain", (BackendSpec("plain-0", "127.0.0.1", 9002),)),
    ),
    (RouteSpec("web", weights=(("app", 1), ("plain", 1))),),
)
READMITTED = {("app", "app-1"): 1000.0, ("plain", "plain-0"): 1000.0}


@pytest.mark.parametrize(
    ("now", "weight", "progress"),
    [
        (1000.0, 1.0, 0.0),  # just readmitted: a tenth of 10
        (999.0, 1.0, 0.0),  # the wall clock stepped back: still the floor
        (1000.5, 1.0, 0.05),  # below the floor: the floor
        (1002.5, 2.5, 0.25),
        (1005.0, 5.0, 0.5),
        (1009.0, 9.0, 0.9),
        (1010.0, None, None),  # done: full weight, no ramp shown
        (2000.0, None, None),
    ],
)
def test_ramp_of_a_readmitted_backend(
    now: float, weight: float | None, progress: float | None
) -> None:
    pool = build_snapshot(SPEC, readmitted=READMITTED).pools["app"]
    ramp = ramp_of(pool, "app-1", now)
    if weight is None:
        assert ramp is None
        return
    assert ramp is not None
    assert ramp.effective_weight == pytest.approx(weight)
    assert ramp.progress == pytest.approx(progress)
    assert (ramp.started, ramp.until) == (1000.0, 1010.0)
    # The balancer picks by the same weight.
    weights, _ = _ramped(pool, now)
    assert weights[1] == pytest.approx(ramp.effective_weight)


@pytest.mark.parametrize(
    ("pool", "backend"),
    [
        ("app", "app-0"),  # never readmitted
        ("app", "nope"),
        ("plain", "plain-0"),  # readmitted, but its pool has no slow start
    ],
)
def test_no_ramp(pool: str, backend: str) -> None:
    snapshot = build_snapshot(SPEC, readmitted=READMITTED)
    assert ramp_of(snapshot.pools[pool], backend, 1001.0) is None


def test_an_unhealthy_backend_is_not_ramping() -> None:
    snapshot = build_snapshot(SPEC, {("app", "app-1"): "unhealthy"}, readmitted=READMITTED)
    assert ramp_of(snapshot.pools["app"], "app-1", 1001.0) is None
