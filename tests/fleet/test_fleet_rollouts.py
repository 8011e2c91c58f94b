"""Rollouts in a fleet: run by the leader, judged on every instance's traffic, taken over.

Theory of operation: two `turnout run` instances on one real etcd (ttl = 2 s). Client traffic
goes only through the instance that is NOT the rollout leader, so the leader's own workers see
nothing: a judge that read only its own instance would never decide. The first test makes the
canary fail and expects the leader to abort on the other instance's counts; the second kills
the leader (SIGKILL: no resignation) in the middle of a healthy rollout and expects the other
instance to take the leadership within the lease's TTL and carry the rollout to the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from etcd_support import Etcd
from fleet_support import Fleet, Instance, LoopbackBackend, call, poll, running_fleet

TTL = 2


def rollout(step_time: float) -> dict[str, Any]:
    return {
        "canary": "green",
        "steps": [20, 50, 100],
        "stepTime": step_time,
        "judge": {"minRequests": 10},
    }


def leader_and_other(fleet: Fleet) -> tuple[Instance, Instance]:
    first = fleet.instances[0]
    name = poll(lambda: first.get("/v1/fleet").body.get("leader"), 15, "a rollout leader")
    leader = fleet[name]
    return leader, next(i for i in fleet.instances if i is not leader)


@contextmanager
def traffic_through(instance: Instance) -> Iterator[list[int]]:
    """Requests through `instance`'s proxy port until the block ends (bounded: 60 s)."""
    statuses: list[int] = []
    stop = threading.Event()

    def send() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                statuses.append(call(f"http://127.0.0.1:{instance.port}/", timeout=5).status)
            except OSError:
                statuses.append(0)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    try:
        yield statuses
    finally:
        stop.set()
        thread.join(10)


def finished(instance: Instance) -> dict[str, Any] | None:
    view = instance.get("/v1/routes/web/rollout").body
    return view if view.get("phase") not in (None, "progressing") else None


def pool_finished(instance: Instance) -> dict[str, Any] | None:
    view = instance.get("/v1/pools/blue/rollout").body
    return view if view.get("phase") not in (None, "progressing") else None


def test_the_leader_aborts_on_traffic_it_never_saw(etcd: Etcd, tmp_path: Path) -> None:
    prefix = "/turnout-e2e/rollout-abort/"
    with running_fleet([etcd.url], tmp_path, prefix, names=("a", "b"), ttl=TTL) as fleet:
        leader, other = leader_and_other(fleet)
        assert other.set_weights({"blue": 100, "green": 0}).status == 200
        green = next(b for b in fleet.backends if b.name == "green")
        green.status = 500
        with traffic_through(other) as statuses:
            started = other.write("POST", "/v1/routes/web/rollout", rollout(5.0))
            assert started.status == 201, started
            done = poll(lambda: finished(leader), 20, "the rollout decided")
        assert done["phase"] == "aborted", done
        assert done["cause"] == "errors", done
        errors = done["evidence"]["errors"]
        # Every request went through `other`: the leader judged its counts, not its own.
        assert errors["canaryRequests"] >= 1, errors
        assert errors["canaryErrors"] >= 1, errors
        assert statuses.count(500) >= 1
        for instance in fleet.instances:
            assert instance.route().body["weights"] == {"blue": 100, "green": 0}
        # /metrics says who leads.
        assert "turnout_fleet_leader 1.0" in str(leader.get("/metrics").body)
        assert "turnout_fleet_leader 0.0" in str(other.get("/metrics").body)
        aborted = [
            c for c in leader.get("/v1/history?limit=5").body["changes"] if c["actor"] == "rollout"
        ]
        assert aborted, "the abort was written by the rollout controller"


def test_another_instance_takes_over_a_rollout_when_the_leader_dies(
    etcd: Etcd, tmp_path: Path
) -> None:
    prefix = "/turnout-e2e/rollout-failover/"
    with running_fleet([etcd.url], tmp_path, prefix, names=("a", "b"), ttl=TTL) as fleet:
        leader, other = leader_and_other(fleet)
        assert other.set_weights({"blue": 100, "green": 0}).status == 200
        with traffic_through(other) as statuses:
            assert other.write("POST", "/v1/routes/web/rollout", rollout(2.0)).status == 201
            poll(
                lambda: other.get("/v1/routes/web/rollout").body.get("step", 0) >= 1 or None,
                20,
                "the rollout's second step",
            )
            leader.kill()
            killed = time.monotonic()
            poll(
                lambda: other.get("/v1/fleet").body.get("leader") == other.name or None,
                TTL + 5,
                "the survivor leads",
            )
            took_over = time.monotonic() - killed
            done = poll(lambda: finished(other), 40, "the rollout finished")
        print(f"leadership taken over {took_over:.2f} s after the leader was killed")
        assert done["phase"] == "promoted", done
        assert other.route().body["weights"] == {"blue": 0, "green": 100}
        assert statuses
        assert all(status == 200 for status in statuses), set(statuses)


def test_a_pool_rollout_started_anywhere_runs_on_the_leader_for_the_whole_fleet(
    etcd: Etcd, tmp_path: Path
) -> None:
    prefix = "/turnout-e2e/pool-rollout/"
    health = {"health": {"enabled": True, "interval": 0.2}}
    with running_fleet(
        [etcd.url], tmp_path, prefix, names=("a", "b"), sections=health, ttl=TTL
    ) as fleet:
        leader, other = leader_and_other(fleet)
        assert other.set_weights({"blue": 1, "green": 0}).status == 200
        # The new version of `blue` is a backend that answers "blue-v2".
        new = LoopbackBackend("blue-v2").start()
        try:
            spec = {
                "mode": "surge",
                "newBackends": [{"name": "blue-v2", "url": new.url}],
                "batch": 1,
                "healthyDeadline": 10,
                "minHealthyTime": 0.5,
                "keepOld": 0.5,
            }
            with traffic_through(other) as statuses:
                started = other.write("POST", "/v1/pools/blue/rollout", spec)
                assert started.status == 201, started
                done = poll(lambda: pool_finished(leader), 30, "the pool rollout finished")
            assert done["phase"] == "promoted", done
            for instance in fleet.instances:
                backends = instance.get("/v1/pools/blue").body["backends"]
                assert [b["name"] for b in backends] == ["blue-v2"], (instance.name, backends)
            assert set(other.traffic(5)) == {"blue-v2"}
            assert statuses
            assert all(status == 200 for status in statuses), set(statuses)
            written = [c["actor"] for c in leader.get("/v1/history?limit=50").body["changes"]]
            assert "rollout" in written
        finally:
            new.stop()
