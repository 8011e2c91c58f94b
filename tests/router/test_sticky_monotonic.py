"""Sticky users never flip back and forth as weights change (istio#9764, envoy#8167).

Ten thousand users with fixed cookies are routed end to end through decide() at every weight.
Membership sets are nested: checking each step against the next proves it for every pair of
weights, because inclusion is transitive.
"""

from __future__ import annotations

from collections.abc import Iterable

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
    rollback,
    with_weights,
)

USERS = 10_000
METAS = tuple(RequestMeta("web.test", "/", {}, cookie=f"turnout-id=user-{i}") for i in range(USERS))
POOLS = tuple(
    PoolSpec(name, (BackendSpec(f"{name}-1", "127.0.0.1", 8000 + port),))
    for port, name in enumerate(("stable", "canary", "a", "b"))
)


def _snapshot(weights: Iterable[tuple[str, int]]) -> Snapshot:
    route = RouteSpec("web", weights=tuple(weights), sticky=StickySpec(issue=False))
    return build_snapshot(Spec(pools=POOLS, routes=(route,)))


def _assignment(snapshot: Snapshot) -> tuple[str, ...]:
    """Each user's pool. The roll differs per user and must not matter: the cookie decides."""
    decisions = [decide(meta, snapshot, roll=user * 7919) for user, meta in enumerate(METAS)]
    assert {decision.rule for decision in decisions} == {"cookie"}
    return tuple(decision.pool.name if decision.pool else "" for decision in decisions)


def _members(assignment: tuple[str, ...], pool: str) -> frozenset[int]:
    return frozenset(user for user, name in enumerate(assignment) if name == pool)


@pytest.fixture(scope="module")
def canary_by_weight() -> dict[int, frozenset[int]]:
    """Canary members at every canary weight 0..100 (stable = 100 - w)."""
    return {
        w: _members(_assignment(_snapshot((("stable", 100 - w), ("canary", w)))), "canary")
        for w in range(101)
    }


def test_raising_canary_weight_only_moves_users_in(
    canary_by_weight: dict[int, frozenset[int]],
) -> None:
    assert canary_by_weight[0] == frozenset()
    assert len(canary_by_weight[100]) == USERS
    for w in range(100):
        # Everyone in the canary at w is still in it at w + 1 (hence at every w' > w).
        lost = canary_by_weight[w] - canary_by_weight[w + 1]
        assert not lost, f"{len(lost)} users left the canary when its weight rose to {w + 1}"
    for w in range(101):
        # And the canary really grows with its weight (a hash spread over 10,000 users).
        assert len(canary_by_weight[w]) / USERS == pytest.approx(w / 100, abs=0.02)


def test_lowering_canary_weight_only_moves_users_out(
    canary_by_weight: dict[int, frozenset[int]],
) -> None:
    everyone = frozenset(range(USERS))
    for w in range(100, 0, -1):
        stable_before = everyone - canary_by_weight[w]
        stable_after = everyone - canary_by_weight[w - 1]
        joined = stable_before - stable_after
        assert not joined, f"{len(joined)} stable users moved to the canary at weight {w - 1}"
        assert canary_by_weight[w - 1] <= canary_by_weight[w]


def test_rollout_and_rollback_through_edits() -> None:
    """The same property through with_weights (the admin path), and rollback sends users back."""
    snapshot = _snapshot((("stable", 99), ("canary", 1)))
    start = _assignment(snapshot)
    previous = start
    for w in (5, 25, 50, 100):
        snapshot = with_weights(snapshot, "web", {"stable": 100 - w, "canary": w})
        current = _assignment(snapshot)
        assert all(
            now == "canary"
            for before, now in zip(previous, current, strict=True)
            if before == "canary"
        )
        previous = current
    assert set(previous) == {"canary"}
    assert _assignment(rollback(snapshot, "web")) == _assignment(
        _snapshot((("stable", 50), ("canary", 50)))
    )
    snapshot = with_weights(snapshot, "web", {"stable": 99, "canary": 1})
    assert _assignment(snapshot) == start


def _moves(before: tuple[str, ...], after: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(old, new) for old, new in zip(before, after, strict=True) if old != new}


def test_three_pools_candidate_change_moves_only_to_and_from_baseline() -> None:
    """Percent-style: b stays at 10 %, a goes 0..40 % and back, stable takes the rest."""
    steps = [_assignment(_snapshot((("stable", 90 - a), ("a", a), ("b", 10)))) for a in range(41)]
    b_members = _members(steps[0], "b")
    assert len(b_members) / USERS == pytest.approx(0.10, abs=0.02)
    assert len(_members(steps[40], "a")) / USERS == pytest.approx(0.40, abs=0.02)
    for a in range(40):
        assert _members(steps[a + 1], "b") == b_members, f"b's users changed when a went to {a + 1}"
        assert _moves(steps[a], steps[a + 1]) <= {("stable", "a")}, a
        assert _moves(steps[a + 1], steps[a]) <= {("a", "stable")}, a


def test_three_pools_proportional_change_never_moves_between_candidates() -> None:
    """Proportion-style: only a's weight changes, so b's share shifts too, but only via stable."""
    previous = _assignment(_snapshot((("stable", 80), ("a", 0), ("b", 20))))
    for a in range(4, 81, 4):
        current = _assignment(_snapshot((("stable", 80), ("a", a), ("b", 20))))
        moves = _moves(previous, current)
        assert ("a", "b") not in moves
        assert ("b", "a") not in moves
        assert moves <= {("stable", "a"), ("b", "stable")}, a
        previous = current
