"""A pool rollout across restarts of turnout: its state is saved with every transition, so a
turnout started again on the same configuration (and state file) resumes it at its stage,
progressing or paused, while the backend programs it rolls keep running.

e. Restarted while a batch is held, it goes on from that hold; restarted while paused, it
   stays paused at its batch and stage until a person resumes it; then it finishes.
"""

from __future__ import annotations

import time
from pathlib import Path

from admin.admin_support import api, turnout_in, with_ports
from roll_support import (
    POOL,
    at,
    final,
    fleet,
    pool_config,
    roll,
    start,
    wait_for_roll,
)

from benchmarks.roll_fleet import NEW, OLD

NAMES = [f"{POOL}-{i}" for i in range(1, 4)]


def test_a_restart_resumes_the_rollout_at_its_stage_progressing_or_paused(
    tmp_path: Path,
) -> None:
    (tmp_path / "backends").mkdir()
    with fleet(tmp_path / "backends") as backends:
        urls = [start(backends, name) for name in NAMES]
        data = with_ports(pool_config(urls), workers=2)
        spec = {
            "hook": {"command": backends.hook(), "timeout": 30},
            "drainTimeout": 10,
            "healthyDeadline": 10,
            "minHealthyTime": 2,
        }
        with turnout_in(tmp_path, data, "first.log") as proxy:
            roll(api(proxy), spec)
            held = wait_for_roll(api(proxy), at(1, "holding"), 15)
        assert held["phase"] == "progressing", held

        # Progressing: it resumes holding batch 1 (its clock kept: it may move on at once),
        # then goes on by itself.
        with turnout_in(tmp_path, data, "second.log") as proxy:
            admin = api(proxy)
            second = wait_for_roll(admin, at(2, "holding"), 20)
            assert (second["phase"], second["started"]) == ("progressing", held["started"])
            paused = admin.call("POST", f"/v1/pools/{POOL}/rollout/pause").ok()
            assert paused["phase"] == "paused"
            changes = admin.get("/v1/history?limit=200")["changes"]
        after_restart = [
            change
            for change in reversed(changes)
            if change["action"].startswith("rollout-")
            and change["revision"] > held["transitionRevision"]
        ]
        moved = after_restart[0]
        assert (moved["before"]["batch"], moved["before"]["stage"]) == (1, "holding"), moved
        assert (moved["after"]["batch"], moved["after"]["stage"]) == (2, "draining"), moved
        assert moved["actor"] == "rollout"
        assert backends.version("blue-2") == NEW

        # Paused: it stays paused at batch 2, holding, until resumed; then it finishes.
        with turnout_in(tmp_path, data, "third.log") as proxy:
            admin = api(proxy)
            time.sleep(1)  # longer than the controller takes to act on a progressing rollout
            still = admin.get(f"/v1/pools/{POOL}/rollout")
            assert (still["phase"], still["batch"], still["stage"]) == ("paused", 2, "holding")
            assert still["replaced"] == ["blue-1", "blue-2"]
            assert backends.version("blue-3") == OLD
            admin.call("POST", f"/v1/pools/{POOL}/rollout/resume").ok()
            done = wait_for_roll(admin, final, 20)
            assert done["phase"] == "promoted", done
            # Hook results are kept in memory: this turnout saw only blue-3's.
            assert [(h["backend"], h["ok"]) for h in done["hooks"]] == [("blue-3", True)]
        assert [backends.version(name) for name in NAMES] == [NEW, NEW, NEW]
