"""Which changes need force: exactly those that give a pool with no eligible backend a larger
share of some route's traffic than it had (router.guards)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RouteSpec,
    Snapshot,
    Spec,
    abort,
    build_snapshot,
    promote,
    rollback,
    switch_active,
    with_admin_state,
    with_backend,
    with_backend_removed,
    with_health,
    with_weights,
)
from router.guards import NoEligibleBackend, Stranded, newly_stranded, require_eligible

SPEC = Spec(
    pools=(
        PoolSpec(
            "stable", (BackendSpec("s1", "127.0.0.1", 8001), BackendSpec("s2", "127.0.0.1", 8002))
        ),
        PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 8003),)),
        PoolSpec("blue", (BackendSpec("b1", "127.0.0.1", 8005),)),
        PoolSpec("green", (BackendSpec("g1", "127.0.0.1", 8006),)),
    ),
    routes=(
        RouteSpec("web", hosts=("web.test",), weights=(("stable", 90), ("canary", 10))),
        RouteSpec(
            "bg", hosts=("bg.test",), mode="blue-green", colours=("blue", "green"), active="blue"
        ),
        RouteSpec("api", hosts=("api.test",), weights=(("stable", 1), ("canary", 0))),
    ),
)

Edit = Callable[[Snapshot], Snapshot]


def start(*dead: str, web: tuple[int, int] = (90, 10)) -> Snapshot:
    """The spec with every backend of the `dead` pools drained and web's weights set."""
    pools = tuple(
        replace(pool, backends=tuple(replace(b, admin_state="drain") for b in pool.backends))
        if pool.name in dead
        else pool
        for pool in SPEC.pools
    )
    routes = tuple(
        replace(r, weights=(("stable", web[0]), ("canary", web[1]))) if r.name == "web" else r
        for r in SPEC.routes
    )
    return build_snapshot(Spec(pools, routes), revision=3)


def weights(stable: int, canary: int, route: str = "web") -> Edit:
    return lambda s: with_weights(s, route, {"stable": stable, "canary": canary})


@dataclass(frozen=True)
class Case:
    id: str
    before: Snapshot
    edit: Edit
    stranded: tuple[tuple[str, str], ...]
    """(route, pool) pairs that need force; () = no force needed."""


CASES = [
    # Weighted routes: only a larger share for a dead pool needs force.
    Case("canary-dead-down", start("canary"), weights(95, 5), ()),
    Case("canary-dead-to-zero", start("canary"), weights(100, 0), ()),
    Case("canary-dead-up", start("canary"), weights(80, 20), (("web", "canary"),)),
    Case("canary-dead-same-share", start("canary"), weights(180, 20), ()),
    Case("canary-dead-unchanged", start("canary"), weights(90, 10), ()),
    Case("canary-dead-abort", start("canary"), lambda s: abort(s, "web"), ()),
    Case("canary-dead-promote", start("canary"), lambda s: promote(s, "web"), (("web", "canary"),)),
    Case(
        "canary-dead-rollback-down",
        with_weights(start("canary", web=(80, 20)), "web", {"stable": 95, "canary": 5}),
        lambda s: rollback(s, "web"),
        (("web", "canary"),),
    ),
    Case(
        "canary-dead-rollback-to-lower",
        with_weights(start("canary", web=(95, 5)), "web", {"stable": 80, "canary": 20}),
        lambda s: rollback(s, "web"),
        (),
    ),
    Case("canary-alive-up", start(), weights(50, 50), ()),
    Case("other-route-onto-dead", start("canary"), weights(1, 1, "api"), (("api", "canary"),)),
    Case(
        "both-dead-shift-to-canary", start("stable", "canary"), weights(50, 50), (("web", "canary"),)
    ),
    Case("both-dead-shift-to-stable", start("stable", "canary"), weights(95, 5), (("web", "stable"),)),
    # Blue-green: the active colour holds the whole share.
    Case("switch-onto-dead", start("green"), lambda s: switch_active(s, "bg", "green"), (("bg", "green"),)),
    Case("switch-off-dead", start("blue"), lambda s: switch_active(s, "bg", "green"), ()),
    Case("switch-to-active-dead", start("blue"), lambda s: switch_active(s, "bg", "blue"), ()),
    # Backends: the last eligible one of a pool that takes traffic.
    Case("drain-last-canary", start(), lambda s: with_admin_state(s, "canary", "c1", "drain"), (("web", "canary"),)),
    Case("maint-last-active", start(), lambda s: with_admin_state(s, "blue", "b1", "maint"), (("bg", "blue"),)),
    Case("drain-one-of-two", start(), lambda s: with_admin_state(s, "stable", "s1", "drain"), ()),
    Case("drain-last-preview", start(), lambda s: with_admin_state(s, "green", "g1", "drain"), ()),
    Case("drain-last-of-zero-weight", start(web=(1, 0)), lambda s: with_admin_state(s, "canary", "c1", "drain"), ()),
    Case("weight-zero-last", start(), lambda s: with_backend(s, "canary", "c1", weight=0), (("web", "canary"),)),
    Case("remove-last", start(), lambda s: with_backend_removed(s, "canary", "c1"), (("web", "canary"),)),
    Case("unhealthy-last", start(), lambda s: with_health(s, "blue", "b1", "unhealthy"), (("bg", "blue"),)),
    Case("ready-again", start("canary"), lambda s: with_admin_state(s, "canary", "c1", "ready"), ()),
    Case(
        "drain-both-stable",
        with_admin_state(start(), "stable", "s1", "drain"),
        lambda s: with_admin_state(s, "stable", "s2", "drain"),
        (("web", "stable"), ("api", "stable")),
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_change_needs_force_when_a_dead_pool_gains_share(case: Case) -> None:
    after = case.edit(case.before)
    found = newly_stranded(case.before, after)
    assert [(s.route, s.pool) for s in found] == list(case.stranded)
    if case.stranded:
        with pytest.raises(NoEligibleBackend) as caught:
            require_eligible(case.before, after)
        assert caught.value.pools == tuple(dict.fromkeys(pool for _, pool in case.stranded))
    else:
        require_eligible(case.before, after)


def test_shares_are_exact_fractions() -> None:
    before = start("canary", web=(2, 1))
    [stranded] = newly_stranded(before, weights(1, 1)(before))
    assert stranded == Stranded("web", "canary", Fraction(1, 3), Fraction(1, 2))
