"""A pool rollout step's admin states and backends, applied to a snapshot in one rebuild, and
idempotent: a restarted rollout performs its stage's action again."""

from __future__ import annotations

from proxy.control.rolling.controller import apply_action
from proxy.control.rolling.model import Action
from router import Spec, build_snapshot
from router.spec import BackendSpec, PoolSpec, RouteSpec

POOL = PoolSpec(
    "blue", (BackendSpec("blue-1", "127.0.0.1", 9001), BackendSpec("blue-2", "127.0.0.1", 9002))
)
SPEC = Spec(routes=(RouteSpec("web", weights=(("blue", 100),)),), pools=(POOL,))


def states(snapshot_spec: Spec) -> dict[str, str]:
    pool = snapshot_spec.pool("blue")
    assert pool is not None
    return {b.name: b.admin_state for b in pool.backends}


def test_states_added_and_removed_backends_in_one_revision() -> None:
    current = build_snapshot(SPEC, {}, 7)
    add = Action("add-backends", add=(("new-1", "http://127.0.0.1:9101"),))
    added = apply_action(current, "blue", add)
    assert added.revision == 8
    assert states(added.spec) == {"blue-1": "ready", "blue-2": "ready", "new-1": "maint"}
    assert apply_action(added, "blue", add) is added  # performed again: nothing changes
    move = Action("move", states=(("new-1", "ready"), ("blue-1", "drain"), ("blue-2", "drain")))
    moved = apply_action(added, "blue", move)
    assert moved.revision == 9
    assert states(moved.spec) == {"blue-1": "drain", "blue-2": "drain", "new-1": "ready"}
    assert apply_action(moved, "blue", move) is moved
    remove = Action("remove-old", remove=("blue-1", "blue-2"))
    removed = apply_action(moved, "blue", remove)
    assert states(removed.spec) == {"new-1": "ready"}
    assert apply_action(removed, "blue", remove) is removed


def test_an_action_for_a_pool_that_is_gone_changes_nothing() -> None:
    current = build_snapshot(SPEC, {}, 3)
    assert apply_action(current, "green", Action("drain", states=(("x", "drain"),))) is current
