"""The observed split matches the set split; weight 0 means no traffic, ever (apisix#12699)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    Snapshot,
    Spec,
    StickySpec,
    build_snapshot,
    decide,
)

DECISIONS = 20_000
META = RequestMeta("web.test", "/", {})
POOLS = tuple(
    PoolSpec(name, (BackendSpec(f"{name}-1", "127.0.0.1", 8000 + port),))
    for port, name in enumerate(("stable", "canary", "a", "b", "c", "dark"))
)

# "weighted": no sticky cookie, the roll's bucket decides. "issued": a sticky route issuing a
# fresh cookie per request (a new user each time), so the cookie's hash bucket decides.
MODES = {"weighted": None, "issued": StickySpec(issue=True)}


def _snapshot(weights: tuple[tuple[str, int], ...], mode: str) -> Snapshot:
    route = RouteSpec("web", weights=weights, sticky=MODES[mode])
    return build_snapshot(Spec(pools=POOLS, routes=(route,)))


def _observed(snapshot: Snapshot, seed: int, count: int = DECISIONS) -> Counter[str]:
    rng = random.Random(seed)
    observed: Counter[str] = Counter()
    for _ in range(count):
        decision = decide(META, snapshot, rng.getrandbits(64))
        assert decision.pool is not None
        observed[decision.pool.name] += 1
    return observed


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    "weights",
    [
        pytest.param((("stable", 90), ("canary", 10)), id="90-10"),
        pytest.param((("stable", 50), ("canary", 50)), id="50-50"),
        pytest.param((("a", 1), ("b", 2), ("c", 1)), id="1-2-1"),
    ],
)
def test_observed_share_matches_set_share(weights: tuple[tuple[str, int], ...], mode: str) -> None:
    observed = _observed(_snapshot(weights, mode), seed=2024)
    total = sum(weight for _, weight in weights)
    assert set(observed) == {name for name, _ in weights}
    for name, weight in weights:
        share = 100.0 * observed[name] / DECISIONS
        assert share == pytest.approx(100.0 * weight / total, abs=1.5), (name, observed)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    "weights",
    [
        pytest.param((("stable", 100), ("dark", 0)), id="canary-at-0"),
        pytest.param((("stable", 50), ("dark", 0), ("canary", 50)), id="inner-0"),
        pytest.param((("dark", 0), ("stable", 1)), id="baseline-at-0"),
        pytest.param((("stable", 9999), ("canary", 1), ("dark", 0)), id="next-to-tiny"),
    ],
)
def test_weight_zero_gets_nothing(weights: tuple[tuple[str, int], ...], mode: str) -> None:
    observed = _observed(_snapshot(weights, mode), seed=7)
    assert observed["dark"] == 0
    assert sum(observed.values()) == DECISIONS


@pytest.mark.parametrize(
    "weights",
    [
        (("stable", 100), ("dark", 0)),
        (("stable", 50), ("dark", 0), ("canary", 50)),
        (("dark", 0), ("stable", 1)),
        (("stable", 9999), ("canary", 1), ("dark", 0)),
    ],
)
def test_weight_zero_owns_no_bucket(weights: tuple[tuple[str, int], ...]) -> None:
    """Exhaustive over the bucket range: roll r lands in bucket r for a non-sticky route."""
    snapshot = _snapshot(weights, "weighted")
    owners: Counter[str] = Counter()
    for bucket in range(10_000):
        decision = decide(META, snapshot, bucket)
        assert decision.bucket == bucket
        assert decision.pool is not None
        owners[decision.pool.name] += 1
    assert owners["dark"] == 0
    assert sum(owners.values()) == 10_000
