"""router.failover is the one home of failover: the pool a user lands in does not depend on who
noticed the failure (the health checker, through decide(), or a connect error, through the data
plane's fail_over), and each rule is one row of a table."""

from __future__ import annotations

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RequestMeta,
    RouteSpec,
    Spec,
    build_snapshot,
    decide,
    fail_over,
)
from router.spec import Failover


def pool(name: str) -> PoolSpec:
    return PoolSpec(name, (BackendSpec(f"{name}-0", "127.0.0.1", 9000),))


def down(*names: str) -> dict[tuple[str, str], str]:
    return {(name, f"{name}-0"): "unhealthy" for name in names}


META = RequestMeta("example.com", "/", {})


@pytest.mark.parametrize(
    "weights",
    [
        (("a", 40), ("b", 30), ("c", 20), ("d", 10)),
        (("a", 10), ("b", 20), ("c", 30), ("d", 40), ("e", 50)),
        (("b", 25), ("a", 25), ("d", 25), ("c", 25)),
    ],
)
def test_a_user_lands_in_the_same_pool_whoever_noticed_the_failure(
    weights: tuple[tuple[str, int], ...],
) -> None:
    pools = tuple(pool(name) for name, _ in weights)
    spec = Spec(pools, (RouteSpec("web", weights=weights),))
    alive = build_snapshot(spec)
    for failed, _ in weights:
        noticed = build_snapshot(spec, down(failed))
        for roll in range(0, 10_000, 37):
            decision = decide(META, alive, roll)
            assert decision.pool is not None
            if decision.pool.name != failed:
                continue
            by_checker = decide(META, noticed, roll)
            by_connect = fail_over(decision, failed, roll)
            assert by_connect is not None
            assert by_connect.pool is not None
            assert by_checker.pool is not None
            assert (by_connect.pool.name, by_connect.fallback_from) == (
                by_checker.pool.name,
                by_checker.fallback_from,
            ), (failed, roll)


@pytest.mark.parametrize(
    ("mode", "failover", "fallback", "dead", "failed", "expected"),
    [
        # weighted, auto: the other live pools; none live -> the fallback; nothing -> None
        ("weighted", "auto", None, (), "a", "b"),
        ("weighted", "auto", "spare", ("b",), "a", "spare"),
        ("weighted", "auto", None, ("b",), "a", None),
        ("weighted", "auto", "spare", ("b", "spare"), "a", None),
        # weighted, none: straight to the fallback
        ("weighted", "none", "spare", (), "a", "spare"),
        ("weighted", "none", None, (), "a", None),
        # blue-green, auto: the other colour, then the fallback
        ("blue-green", "auto", "spare", (), "a", "b"),
        ("blue-green", "auto", "spare", ("b",), "a", "spare"),
        ("blue-green", "none", "spare", (), "a", "spare"),
        ("blue-green", "none", None, (), "a", None),
        # the fallback pool itself failing has nowhere to go
        ("weighted", "none", "spare", (), "spare", None),
    ],
)
def test_where_a_failed_pools_requests_go(
    mode: str,
    failover: Failover,
    fallback: str | None,
    dead: tuple[str, ...],
    failed: str,
    expected: str | None,
) -> None:
    if mode == "weighted":
        route = RouteSpec(
            "web", weights=(("a", 1), ("b", 1)), failover=failover, fallback_pool=fallback
        )
    else:
        route = RouteSpec(
            "web",
            mode="blue-green",
            colours=("a", "b"),
            active="a",
            failover=failover,
            fallback_pool=fallback,
        )
    snapshot = build_snapshot(Spec((pool("a"), pool("b"), pool("spare")), (route,)), down(*dead))
    decision = decide(META, snapshot, 0)
    other = fail_over(decision, failed, 1234)
    if expected is None:
        assert other is None
    else:
        assert other is not None
        assert other.pool is not None
        assert (other.pool.name, other.fallback_from) == (expected, failed)
