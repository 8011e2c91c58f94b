"""What the pool rollout API and CLI tests share: pool rollout values as the control service
answers with them, built directly (the rendering tests need no running rollout for them), and a
real turnout whose pools are health-checked fast enough for a rollout to run in seconds.

The judge's arithmetic is not what those tests check: tests/admin/rollout_support.py's
`known_evidence` fixes the evidence to exp(log_ratios[0]).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from admin_support import Api, BackendLoop

from helpers import config
from proxy.control.rolling.model import HookResult, PoolRollout, RollSpec
from proxy.control.rolling.status import PoolRolloutState
from proxy.control.rollout.judge import Test, Verdict

STARTED = 1_700_000_000.0

FAST_HEALTH = {"enabled": True, "interval": 0.2, "healthy_threshold": 1, "path": "/"}
"""Checks every 0.2 s, one success readmits: a replaced backend is healthy within a tick."""

QUICK = {"minHealthyTime": 0.5, "healthyDeadline": 10, "drainTimeout": 5}
"""A start's timings that make a rollout of two backends take a few seconds."""


def hook(script: str) -> list[str]:
    """A replace hook: a Python script (argv, no shell), TURNOUT_ACTION etc. in os.environ."""
    return [sys.executable, "-c", "import os, sys, time\n" + script]


SLOW_OK = hook("time.sleep(1)")
"""A hook that replaces nothing and succeeds after a second, as a quick deploy would."""

STUCK = hook("time.sleep(1 if os.environ['TURNOUT_ACTION'] == 'revert' else 120)")
"""Replacing never ends (until the rollout is aborted and the hook killed); reverting takes a
second."""


def pools(loop: BackendLoop, sizes: dict[str, int]) -> dict[str, Any]:
    """A configuration of pools of `sizes` backends each, health-checked fast, behind one
    weighted route `web` over all of them."""
    urls = {
        pool: [loop.start(f"{pool}-{i + 1}").url for i in range(size)]
        for pool, size in sizes.items()
    }
    routes = {"web": {"weights": dict.fromkeys(sizes, 1)}}
    return config(urls, routes, health=FAST_HEALTH)


def wait_for_phase(admin: Api, pool: str, *phases: str, timeout: float = 30.0) -> dict[str, Any]:
    """The pool's rollout once it is in one of `phases` (polled; fails at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = admin.get(f"/v1/pools/{pool}/rollout")
        if view["phase"] in phases:
            return view
        assert time.monotonic() < deadline, f"still {view['phase']}: {view['reason']}"
        time.sleep(0.05)


def wait_for_stage(admin: Api, pool: str, stage: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = admin.get(f"/v1/pools/{pool}/rollout")
        if view["stage"] == stage:
            return view
        assert time.monotonic() < deadline, f"still {view['stage']}: {view['reason']}"
        time.sleep(0.05)


def in_place_state(**changes: Any) -> PoolRolloutState:
    """Batch 2 of 3 of an in-place rollout of `blue`, held; the first batch replaced."""
    spec = RollSpec(
        mode="in-place",
        batch=2,
        min_healthy_time=60.0,
        hook_command=("./deploy.sh", "v2"),
        hook_timeout=120.0,
        webhook="https://hooks.example.test/services/T000/SECRET?token=x",
    )
    rollout = PoolRollout(
        pool="blue",
        spec=spec,
        phase="progressing",
        reason="batch 2/3 (blue-3, blue-4): healthy; readmitted with slow start, held and judged",
        batches=(("blue-1", "blue-2"), ("blue-3", "blue-4"), ("blue-5",)),
        batch=1,
        stage="holding",
        stage_started=STARTED + 60,
        started=STARTED,
        updated=STARTED + 60.5,
        revision=40,
        replaced=("blue-1", "blue-2", "blue-3", "blue-4"),
    )
    fields: dict[str, Any] = {
        "revision": 41,
        "rollout": rollout,
        "verdict": Verdict("inconclusive", None, "120 of 300 canary requests in this step"),
        "errors": Test((math.log(4.0),), 640, 6, 900, 3),
        "new_requests": 640,
        "new_errors": 6,
        "old_requests": 900,
        "old_errors": 3,
        "hooks": (
            HookResult("blue-1", "replace", True, "exit status 0"),
            HookResult("blue-2", "replace", True, "exit status 0"),
            HookResult("blue-3", "replace", True, "exit status 0", ("pulled v2", "restarted")),
            HookResult("blue-4", "replace", True, "exit status 0"),
        ),
        "threshold": 100.0,
    }
    fields.update(changes)
    return PoolRolloutState(**fields)


def surge_state() -> PoolRolloutState:
    """A surge of `blue` (2 old backends) onto 2 new ones, batch 1 moved, aborted by a person."""
    spec = RollSpec(
        mode="surge",
        new_backends=(
            ("blue-new-1", "http://10.0.0.8:8080"),
            ("blue-new-2", "http://10.0.0.9:8080"),
        ),
    )
    rollout = PoolRollout(
        pool="blue",
        spec=spec,
        phase="aborted",
        reason="aborted by alice at batch 2/2 (blue-2 → blue-new-2): every old backend back",
        batches=(("blue-1",), ("blue-2",)),
        batch=1,
        stage="holding",
        stage_started=STARTED + 30,
        started=STARTED,
        updated=STARTED + 31,
        revision=12,
        new_batches=(("blue-new-1",), ("blue-new-2",)),
        replaced=("blue-1",),
        cause="manual",
    )
    return PoolRolloutState(12, rollout, None, Test(), 0, 0, 0, 0, (), 100.0)
