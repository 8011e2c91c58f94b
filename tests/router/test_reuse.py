"""build_snapshot(..., previous=...) keeps what did not change and builds what did, and the
result routes exactly as a snapshot built from nothing (router.reuse)."""

from __future__ import annotations

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RouteSpec,
    Spec,
    SpecError,
    build_snapshot,
    with_backend,
    with_health_view,
    with_weights,
)


def _spec() -> Spec:
    pools = tuple(
        PoolSpec(name=f"p{i}", backends=(BackendSpec(f"b{i}", "127.0.0.1", 9000 + i),))
        for i in range(4)
    )
    routes = (
        RouteSpec(name="one", path_prefix="/one", weights=(("p0", 50), ("p1", 50))),
        RouteSpec(name="two", path_prefix="/two", weights=(("p2", 50), ("p3", 50))),
    )
    return Spec(pools=pools, routes=routes)


def test_a_route_edit_keeps_every_pool_and_the_other_routes() -> None:
    before = build_snapshot(_spec())
    after = with_weights(before, "one", {"p0": 90, "p1": 10})
    assert after == build_snapshot(after.spec, {}, after.revision)
    assert all(after.pools[name] is before.pools[name] for name in before.pools)
    assert after.routes[1] is before.routes[1]
    assert after.routes[0] is not before.routes[0]


def test_a_backend_edit_rebuilds_its_pool_and_the_routes_that_name_it() -> None:
    before = build_snapshot(_spec())
    after = with_backend(before, "p2", "b2", admin_state="drain")
    assert after == build_snapshot(after.spec, {}, after.revision)
    assert after.pools["p2"] is not before.pools["p2"]
    assert after.pools["p0"] is before.pools["p0"]
    assert after.routes[0] is before.routes[0]
    assert after.routes[1] is not before.routes[1]
    assert any(pool is after.pools["p2"] for pool in after.routes[1].split_pools)


def test_a_health_change_rebuilds_the_pool_it_concerns() -> None:
    before = build_snapshot(_spec())
    after = with_health_view(before, {("p3", "b3"): "unhealthy"}, {})
    assert after == build_snapshot(after.spec, after.health, after.revision)
    assert after.pools["p3"] is not before.pools["p3"]
    assert after.pools["p3"].eligible == ()
    healed = with_health_view(after, {}, {("p3", "b3"): 5.0})
    assert healed == build_snapshot(healed.spec, {}, healed.revision, {("p3", "b3"): 5.0})


def test_a_route_naming_a_removed_pool_is_still_refused() -> None:
    before = build_snapshot(_spec())
    spec = Spec(pools=before.spec.pools[:3], routes=before.spec.routes)
    with pytest.raises(SpecError, match="p3"):
        build_snapshot(spec, {}, 2, {}, before)
