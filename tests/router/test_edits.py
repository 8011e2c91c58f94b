"""Pure edits: old snapshot in, new validated snapshot out, revision bumped, input untouched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from router import (
    BackendSpec,
    PoolSpec,
    RequestMeta,
    Route,
    RouteSpec,
    Snapshot,
    Spec,
    SpecError,
    abort,
    build_snapshot,
    decide,
    promote,
    rollback,
    switch_active,
    with_admin_state,
    with_health,
    with_weights,
)
from router.spec import AdminState

SPEC = Spec(
    pools=(
        PoolSpec(
            "stable", (BackendSpec("s1", "127.0.0.1", 8001), BackendSpec("s2", "127.0.0.1", 8002))
        ),
        PoolSpec("canary", (BackendSpec("c1", "127.0.0.1", 8003),)),
        PoolSpec("extra", (BackendSpec("e1", "127.0.0.1", 8004),)),
        PoolSpec("blue", (BackendSpec("b1", "127.0.0.1", 8005),)),
        PoolSpec("green", (BackendSpec("g1", "127.0.0.1", 8006),)),
    ),
    routes=(
        RouteSpec("web", hosts=("web.test",), weights=(("stable", 90), ("canary", 10))),
        RouteSpec(
            "bg", hosts=("bg.test",), mode="blue-green", colours=("blue", "green"), active="blue"
        ),
    ),
)


@pytest.fixture
def snapshot() -> Snapshot:
    return build_snapshot(SPEC, revision=5)


def _route_spec(snapshot: Snapshot, route: str) -> RouteSpec:
    spec = snapshot.spec.route(route)
    assert spec is not None
    return spec


def _route(snapshot: Snapshot, route: str) -> Route:
    compiled = snapshot.route(route)
    assert compiled is not None
    return compiled


def _weights(snapshot: Snapshot, route: str = "web") -> tuple[tuple[str, int], ...]:
    return _route_spec(snapshot, route).weights


def _pool_at(snapshot: Snapshot, roll: int, host: str = "web.test") -> str | None:
    decision = decide(RequestMeta(host, "/", {}), snapshot, roll)
    return None if decision.pool is None else decision.pool.name


def _eligible(snapshot: Snapshot, pool: str) -> list[str]:
    return [backend.name for backend in snapshot.pools[pool].eligible]


def _problem_fields(error: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [problem.field for problem in error.value.problems]


def test_with_weights(snapshot: Snapshot) -> None:
    # Given in the "wrong" order: the baseline must stay first so sticky users stay put.
    edited = with_weights(snapshot, "web", {"canary": 25, "stable": 75})
    assert edited.revision == 6
    assert _weights(edited) == (("stable", 75), ("canary", 25))
    assert _route_spec(edited, "web").previous_weights == (("stable", 90), ("canary", 10))
    assert _route(edited, "web").split_bounds == (2500, 10_000)
    assert _pool_at(edited, 2000) == "canary"
    # The input snapshot is unchanged and still routes by the old weights.
    assert snapshot.revision == 5
    assert snapshot.spec is SPEC
    assert _weights(snapshot) == (("stable", 90), ("canary", 10))
    assert _pool_at(snapshot, 2000) == "stable"


def test_with_weights_appends_new_pools(snapshot: Snapshot) -> None:
    edited = with_weights(snapshot, "web", {"extra": 5, "stable": 90, "canary": 5})
    assert _weights(edited) == (("stable", 90), ("canary", 5), ("extra", 5))


def test_with_weights_missing_pool(snapshot: Snapshot) -> None:
    with pytest.raises(SpecError) as caught:
        with_weights(snapshot, "web", {"stable": 100})
    assert _problem_fields(caught) == ["routes.web.weights.canary"]
    assert "missing" in caught.value.problems[0].message


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"stable": 0, "canary": 0}, "routes.web.weights"),
        ({"stable": 90, "canary": -10}, "routes.web.weights.canary"),
        ({"stable": 90, "canary": 5, "ghost": 5}, "routes.web.weights.ghost"),
    ],
)
def test_with_weights_invalid(snapshot: Snapshot, weights: dict[str, int], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        with_weights(snapshot, "web", weights)
    assert field in _problem_fields(caught)
    assert snapshot.revision == 5
    assert _weights(snapshot) == (("stable", 90), ("canary", 10))


def test_with_weights_on_blue_green_route(snapshot: Snapshot) -> None:
    with pytest.raises(SpecError) as caught:
        with_weights(snapshot, "bg", {"blue": 1, "green": 1})
    assert _problem_fields(caught) == ["routes.bg.weights"]


def test_rollback_weighted_restores_previous_weights(snapshot: Snapshot) -> None:
    raised = with_weights(snapshot, "web", {"stable": 50, "canary": 50})
    back = rollback(raised, "web")
    assert back.revision == 7
    assert _weights(back) == (("stable", 90), ("canary", 10))
    assert _route_spec(back, "web").previous_weights == (("stable", 50), ("canary", 50))
    # Everybody who was routed by the original weights is routed the same way again.
    rolls = range(0, 10_000, 7)
    assert [_pool_at(back, r) for r in rolls] == [_pool_at(snapshot, r) for r in rolls]


def test_rollback_weighted_without_previous(snapshot: Snapshot) -> None:
    with pytest.raises(SpecError) as caught:
        rollback(snapshot, "web")
    assert _problem_fields(caught) == ["routes.web.previous_weights"]


def test_switch_active_then_rollback(snapshot: Snapshot) -> None:
    assert _pool_at(snapshot, 0, "bg.test") == "blue"
    switched = switch_active(snapshot, "bg", "green")
    assert switched.revision == 6
    route = _route_spec(switched, "bg")
    assert (route.active, route.previous) == ("green", "blue")
    assert _pool_at(switched, 0, "bg.test") == "green"
    assert _pool_at(snapshot, 0, "bg.test") == "blue"  # the input is unchanged

    back = rollback(switched, "bg")
    assert back.revision == 7
    route = _route_spec(back, "bg")
    assert (route.active, route.previous) == ("blue", "green")
    assert _pool_at(back, 0, "bg.test") == "blue"
    # Rolling back the rollback goes forward again.
    assert _pool_at(rollback(back, "bg"), 0, "bg.test") == "green"


def test_rollback_blue_green_without_previous(snapshot: Snapshot) -> None:
    with pytest.raises(SpecError) as caught:
        rollback(snapshot, "bg")
    assert _problem_fields(caught) == ["routes.bg.previous"]


@pytest.mark.parametrize(
    ("route", "to", "field"),
    [
        ("bg", "stable", "to"),  # not one of the route's pools
        ("bg", "ghost", "to"),
        ("web", "canary", "routes.web"),  # not blue-green
        ("nope", "green", "route"),
    ],
)
def test_switch_active_invalid(snapshot: Snapshot, route: str, to: str, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        switch_active(snapshot, route, to)
    assert _problem_fields(caught) == [field]


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: switch_active(s, "bg", "blue"),
        lambda s: with_weights(s, "web", {"stable": 90, "canary": 10}),
        lambda s: with_weights(s, "web", {"canary": 10, "stable": 90}),
    ],
    ids=["switch-to-active", "same-weights", "same-weights-other-order"],
)
def test_an_edit_that_changes_nothing_keeps_the_spec(
    snapshot: Snapshot, edit: Callable[[Snapshot], Snapshot]
) -> None:
    # Not even `previous`/`previous_weights`: they are what rollback returns to.
    assert edit(snapshot).spec == snapshot.spec


@pytest.mark.parametrize("verb", [abort, promote], ids=["abort", "promote"])
def test_a_repeated_abort_or_promote_keeps_what_rollback_returns_to(
    snapshot: Snapshot, verb: Callable[[Snapshot, str], Snapshot]
) -> None:
    once = verb(snapshot, "web")
    twice = verb(once, "web")
    assert twice.spec == once.spec
    assert _route_spec(twice, "web").previous_weights == _weights(snapshot)


@pytest.mark.parametrize("state", ["drain", "maint"])
def test_with_admin_state_removes_backend(snapshot: Snapshot, state: AdminState) -> None:
    edited = with_admin_state(snapshot, "stable", "s1", state)
    assert edited.revision == 6
    assert _eligible(edited, "stable") == ["s2"]
    assert edited.pools["stable"].backends[0].admin_state == state
    assert _eligible(snapshot, "stable") == ["s1", "s2"]
    ready = with_admin_state(edited, "stable", "s1", "ready")
    assert ready.revision == 7
    assert _eligible(ready, "stable") == ["s1", "s2"]


def test_with_health_removes_and_readmits(snapshot: Snapshot) -> None:
    sick = with_health(snapshot, "stable", "s2", "unhealthy")
    assert sick.revision == 6
    assert _eligible(sick, "stable") == ["s1"]
    assert sick.health[("stable", "s2")] == "unhealthy"
    assert _eligible(snapshot, "stable") == ["s1", "s2"]
    assert dict(snapshot.health) == {}
    well = with_health(sick, "stable", "s2", "healthy")
    assert _eligible(well, "stable") == ["s1", "s2"]


def test_edits_keep_each_others_state(snapshot: Snapshot) -> None:
    """Weights, colours, admin state and health live in one snapshot: no edit loses another's."""
    edited = with_health(snapshot, "canary", "c1", "unhealthy")
    edited = with_admin_state(edited, "stable", "s2", "drain")
    edited = with_weights(edited, "web", {"stable": 50, "canary": 50})
    edited = switch_active(edited, "bg", "green")
    assert edited.revision == 9
    assert _eligible(edited, "canary") == []
    assert _eligible(edited, "stable") == ["s1"]
    assert _weights(edited) == (("stable", 50), ("canary", 50))
    active = _route(edited, "bg").active
    assert active is not None
    assert active.name == "green"


EDITS: list[tuple[str, Callable[[Snapshot], Snapshot], str]] = [
    ("unknown-route-weights", lambda s: with_weights(s, "nope", {"stable": 1}), "route"),
    ("unknown-route-rollback", lambda s: rollback(s, "nope"), "route"),
    ("unknown-pool-admin", lambda s: with_admin_state(s, "nope", "s1", "drain"), "pool"),
    ("unknown-pool-health", lambda s: with_health(s, "nope", "s1", "unhealthy"), "pool"),
    (
        "unknown-backend-admin",
        lambda s: with_admin_state(s, "stable", "c1", "drain"),
        "pools.stable.backends",
    ),
    (
        "unknown-backend-health",
        lambda s: with_health(s, "stable", "zz", "unhealthy"),
        "pools.stable.backends",
    ),
]


@pytest.mark.parametrize(
    ("edit", "field"), [(e, f) for _, e, f in EDITS], ids=[i for i, _, _ in EDITS]
)
def test_unknown_names_raise(
    snapshot: Snapshot, edit: Callable[[Snapshot], Snapshot], field: str
) -> None:
    with pytest.raises(SpecError) as caught:
        edit(snapshot)
    assert _problem_fields(caught) == [field]
    assert snapshot.revision == 5


def test_with_weights_names_a_misspelt_pool_as_unknown(snapshot: Snapshot) -> None:
    before = snapshot
    with pytest.raises(SpecError) as caught:
        with_weights(snapshot, "web", {"stable": 90, "canry": 10})
    messages = {(p.field, p.message) for p in caught.value.problems}
    assert ("routes.web.weights.canry", "unknown pool 'canry'") in messages
    assert ("routes.web.weights.canary", "missing: give every weight") in messages
    assert snapshot is before
