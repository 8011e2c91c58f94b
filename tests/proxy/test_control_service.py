"""The control service is the one door to the control plane, for callers inside proxy/ (a
rollout controller) as much as for the admin API: its commands take and return plain values and
enforce every rule themselves, and every write (commands and reload alike) is recorded, saved and
given a revision by the same path.

A real ControlPlane over a real configuration file and state file, not started: with no worker
to publish to, a publish is acknowledged at once, so the service's own behaviour is what is seen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import config, toml
from proxy.config import load_config
from proxy.control import (
    BackendInService,
    ControlPlane,
    ControlService,
    InvalidConfig,
    NoEligibleBackend,
    NotFound,
    PreconditionFailed,
    RevisionUnavailable,
)
from proxy.control.values import PoolState, RouteState

DATA = config(
    {
        "stable": ["http://127.0.0.1:9", "http://127.0.0.1:10"],
        "canary": ["http://127.0.0.1:11"],
        "blue": ["http://127.0.0.1:12"],
        "green": ["http://127.0.0.1:13"],
    },
    {
        "web": {"hosts": ["web.test"], "weights": {"stable": 90, "canary": 10}},
        "bg": {
            "hosts": ["bg.test"],
            "mode": "blue-green",
            "pools": ["blue", "green"],
            "active": "blue",
        },
    },
)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ControlService]:
    path = tmp_path / "turnout.toml"
    path.write_text(toml(DATA))
    settings, snapshot = load_config(path)
    plane = ControlPlane(path, settings, snapshot)
    try:
        yield ControlService(plane)
    finally:
        await plane.health.stop()


def saved(tmp_path: Path) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads((tmp_path / "turnout.state.json").read_bytes())["state"]
    return state


async def test_a_command_returns_the_state_it_made_as_plain_values(
    service: ControlService, tmp_path: Path
) -> None:
    before = service.revision()
    state = await service.set_weights("web", {"stable": 50, "canary": 50}, actor="rollout")
    assert isinstance(state, RouteState)
    assert dataclasses.is_dataclass(state)
    assert state.revision == before + 1
    assert state.spec.weights == (("stable", 50), ("canary", 50))
    # Recorded and saved by the one write path.
    change = service.history(1).changes[0]
    assert (change.revision, change.actor, change.action, change.target) == (
        before + 1,
        "rollout",
        "set-weights",
        "route/web",
    )
    assert saved(tmp_path)["revision"] == before + 1


async def test_the_rules_are_the_services_not_the_callers(service: ControlService) -> None:
    """What the admin API used to check itself, every caller now gets from the service."""
    await service.set_backend("green", "green-1", admin_state="drain", actor="t")
    revision = service.revision()
    with pytest.raises(NoEligibleBackend):
        await service.switch("bg", "green", actor="t")
    with pytest.raises(BackendInService):
        await service.remove_backend("stable", "stable-1", actor="t")
    with pytest.raises(PreconditionFailed):
        await service.set_weights("web", {"stable": 1, "canary": 1}, actor="t", if_match={0})
    with pytest.raises(RevisionUnavailable):
        await service.undo("web", revision + 100, actor="t")
    with pytest.raises(NotFound) as unknown:
        await service.rollback("nope", actor="t")
    assert (unknown.value.kind, unknown.value.name) == ("route", "nope")
    with pytest.raises(NotFound):
        await service.set_backend("stable", "nope", weight=2, actor="t")
    assert service.revision() == revision  # nothing refused changed anything
    # Force, and a drained backend, are what the rules allow.
    assert (await service.switch("bg", "green", actor="t", force=True)).spec.active == "green"
    await service.set_backend("stable", "stable-1", admin_state="drain", actor="t")
    removed = await service.remove_backend("stable", "stable-1", actor="t")
    assert isinstance(removed, PoolState)
    assert [b.name for b in removed.backends] == ["stable-2"]


async def test_abort_is_never_refused_for_a_dead_baseline(service: ControlService) -> None:
    for backend in ("stable-1", "stable-2"):
        await service.set_backend("stable", backend, admin_state="maint", actor="t", force=True)
    state = await service.abort("web", actor="t")
    assert dict(state.spec.weights) == {"stable": 100, "canary": 0}


async def test_undo_restores_a_route_from_the_history(service: ControlService) -> None:
    start = service.revision()
    await service.set_weights("web", {"stable": 1, "canary": 1}, actor="t")
    await service.promote("web", actor="t")
    state = await service.undo("web", start, actor="t", if_match={service.revision()})
    assert state.spec.weights == (("stable", 90), ("canary", 10))
    assert service.history(1).changes[0].action == f"undo-to-{start}"


async def test_pools_report_backends_with_their_health_and_in_flight_counts(
    service: ControlService,
) -> None:
    found = await service.pools()
    stable = next(pool for pool in found.pools if pool.spec.name == "stable")
    assert stable.eligible == 2
    assert [(b.name, b.url, b.health, b.eligible, b.inflight) for b in stable.backends] == [
        ("stable-1", "http://127.0.0.1:9", "healthy", True, 0),
        ("stable-2", "http://127.0.0.1:10", "healthy", True, 0),
    ]
    assert service.backend("stable", "stable-2").revision == found.revision
    assert (await service.route("web")).observed == {}
    assert [w for w in (await service.workers()).workers] == []
    assert not service.readiness().ready  # never started


async def test_reload_writes_through_the_same_path(service: ControlService, tmp_path: Path) -> None:
    """A reload is recorded, saved and given a revision as every other change is; one that
    changes nothing makes no revision; an invalid file changes nothing."""
    path = tmp_path / "turnout.toml"
    start = service.revision()
    assert await service.reload(actor="ops") == start  # the same file: no change
    data = config(
        {"stable": ["http://127.0.0.1:9"], "canary": ["http://127.0.0.1:11"]},
        {"web": {"hosts": ["web.test"], "weights": {"stable": 70, "canary": 30}}},
    )
    path.write_text(toml(data))
    revision = await service.reload(actor="ops")
    assert revision == start + 1
    change = service.history(1).changes[0]
    assert (change.revision, change.actor, change.action, change.target) == (
        revision,
        "ops",
        "reload",
        "config",
    )
    assert saved(tmp_path)["revision"] == revision
    assert [r.spec.name for r in (await service.routes()).routes] == ["web"]
    path.write_text(toml({**data, "routes": {"web": {"weights": {"nope": 1}}}}))
    with pytest.raises(InvalidConfig) as invalid:
        await service.reload(actor="ops")
    assert invalid.value.problems
    assert service.revision() == revision
