"""Surge pool rollouts end to end: the new version runs on new addresses beside the old one, a
real turnout with 2 workers moves the traffic a batch at a time, under keep-alive load.

c. The issue's measured scenario: an abort while a batch is held is one write, acknowledged by
   every worker before the call returns. The figures: the abort call's time (from the call to
   every worker routing to the old backends) and the failed requests across it (none); the
   requests sent once it returned all reach the old version.
   And a surge that runs to its end: the old backends are kept (maint) for keepOld, then
   removed; the new ones are in service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin.admin_support import api, wait_until
from roll_support import (
    POOL,
    admin_states,
    at,
    figures,
    final,
    fleet,
    pool_config,
    roll,
    start,
    wait_for_roll,
)

from benchmarks.roll_bench import acks, sequential
from benchmarks.roll_fleet import NEW, OLD, Fleet
from benchmarks.roll_load import Load
from helpers import ProxyProcess, proxy_process

OLD_NAMES = [f"{POOL}-1", f"{POOL}-2"]
NEW_NAMES = [f"{POOL}-new-1", f"{POOL}-new-2"]
AFTER_ABORT = 200
"""Requests sent once the abort returned, every one of which must reach the old version."""


@pytest.fixture
def surge(tmp_path: Path) -> Iterator[tuple[Fleet, ProxyProcess, list[dict[str, str]]]]:
    with fleet(tmp_path) as backends:
        old = [start(backends, name) for name in OLD_NAMES]
        new = [{"name": name, "url": start(backends, name, NEW)} for name in NEW_NAMES]
        with proxy_process(pool_config(old), workers=2) as proxy:
            yield backends, proxy, new


def test_an_abort_while_held_routes_every_worker_to_the_old_backends_in_one_write(
    surge: tuple[Fleet, ProxyProcess, list[dict[str, str]]],
) -> None:
    _, proxy, new = surge
    admin = api(proxy)
    spec = {
        "mode": "surge",
        "newBackends": new,
        "batch": 1,
        "healthyDeadline": 10,
        "minHealthyTime": 60,  # held until aborted
        "keepOld": 60,
    }
    load = Load(proxy.port, connections=8, rate=400)
    with load.running():
        wait_until(lambda: len(load.answers) > 100)
        roll(admin, spec)
        held = wait_for_roll(admin, at(1, "holding"), 15)
        assert held["phase"] == "progressing", held
        # Both versions serve while batch 1 is held: blue-new-1 took blue-1's traffic.
        wait_until(lambda: NEW in load.versions(load.answers[-50:]))
        before = time.time()
        called = time.perf_counter()
        aborted = admin.call("POST", f"/v1/pools/{POOL}/rollout/abort").ok()
        took = time.perf_counter() - called
        returned = time.time()
        # Once the call returned, every worker routes to the old backends only.
        after = sequential(proxy.port, AFTER_ABORT)
        wait_until(lambda: len(load.between(returned)) > 100)

    assert (aborted["phase"], aborted["cause"]) == ("aborted", "manual"), aborted
    assert "rolled back in one write" in aborted["reason"], aborted["reason"]
    assert after == {f"200 {OLD}": AFTER_ABORT}
    assert set(load.versions(load.between(returned))) == {OLD}
    failed = load.failures()
    assert failed == [], failed[:5]
    around = load.between(before - 1, returned + 1)
    assert len(around) > 100
    states = admin_states(admin)
    assert states == {**dict.fromkeys(OLD_NAMES, "ready"), **dict.fromkeys(NEW_NAMES, "drain")}
    # The rollback was the rollout's last write.
    last = admin.get("/v1/history?limit=1")["changes"][0]
    assert (last["action"], last["actor"]) == ("rollout-aborted", "local")
    ack = acks(proxy.log())[-1]
    figures(
        "c. surge rollback",
        abort_call_ms=f"{took * 1000:.1f}",
        acknowledged_by_every_worker_ms=ack,
        requests_around_it=len(around),
        failed=len(failed),
        next_requests_on_old=f"{after[f'200 {OLD}']}/{AFTER_ABORT}",
    )


def test_a_surge_keeps_the_old_backends_then_removes_them(
    surge: tuple[Fleet, ProxyProcess, list[dict[str, str]]],
) -> None:
    backends, proxy, new = surge
    admin = api(proxy)
    spec = {
        "mode": "surge",
        "newBackends": new,
        "batch": 1,
        "healthyDeadline": 10,
        "minHealthyTime": 0.5,
        "keepOld": 1,
    }
    load = Load(proxy.port, connections=8, rate=200)
    with load.running():
        wait_until(lambda: len(load.answers) > 50)
        started = time.time()
        roll(admin, spec)
        keeping = wait_for_roll(admin, lambda view: view["stage"] == "keeping-old" or final(view))
        # Kept: in maint (no traffic), still probed, until keepOld has passed.
        states = admin_states(admin)
        assert states == {**dict.fromkeys(OLD_NAMES, "maint"), **dict.fromkeys(NEW_NAMES, "ready")}
        done = wait_for_roll(admin, final, 15)
        ended = time.time()
        wait_until(lambda: len(load.between(ended)) > 50)

    assert keeping["phase"] == "progressing", keeping
    assert done["phase"] == "promoted", done
    assert done["replaced"] == OLD_NAMES
    assert admin_states(admin) == dict.fromkeys(NEW_NAMES, "ready")
    pool = admin.get(f"/v1/pools/{POOL}")
    assert all(b["eligible"] and b["health"] == "healthy" for b in pool["backends"]), pool
    assert load.failures() == []
    assert set(load.versions(load.between(ended))) == {NEW}
    assert load.versions(load.between(0, started)) == {OLD: len(load.between(0, started))}
    # The old programs still run (a surge never stops them): only turnout let go of them.
    assert [backends.version(name) for name in OLD_NAMES] == [OLD, OLD]
    figures(
        "c. surge to the end",
        client_requests=len(load.answers),
        failed=0,
        rollout_s=f"{ended - started:.1f}",
    )
