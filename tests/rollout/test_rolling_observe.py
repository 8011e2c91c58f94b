"""What the pool rollout controller derives at each tick, synchronously: the judge's two sides,
the folded counts, health seen afresh, and in-flight from reports that may be stale."""

from __future__ import annotations

from dataclasses import replace

import pytest

from proxy.control.rolling import observe, plan
from proxy.control.rolling.model import PoolRollout, RollSpec, Stage
from proxy.control.rolling.observe import Checks, Run
from proxy.control.rollout.model import JudgeSettings

BLUE = ("blue-0", "blue-1", "blue-2", "blue-3")
IN_PLACE = RollSpec("in-place", hook_command=("./deploy.sh",), judge=JudgeSettings(min_requests=50))
NEW = (("green-0", "http://127.0.0.1:1"), ("green-1", "http://127.0.0.1:2"))
SURGE = RollSpec("surge", batch=2, new_backends=NEW)
POOL_SURGE = (*BLUE, "green-0", "green-1")


def in_place(stage: Stage, batch: int, replaced: tuple[str, ...] = ()) -> PoolRollout:
    rollout = plan.start("blue", IN_PLACE, BLUE, 0.0).rollout
    return replace(rollout, stage=stage, batch=batch, replaced=replaced)


def surge(stage: Stage, batch: int) -> PoolRollout:
    rollout = plan.start("blue", SURGE, BLUE, 0.0).rollout
    moved = BLUE[: 2 * (batch + 1)] if stage != "gating" else ()
    return replace(rollout, stage=stage, batch=batch, replaced=moved)


@pytest.mark.parametrize(
    ("rollout", "pool", "new", "old"),
    [
        # Batch 2 draining: blue-0 replaced and serving, blue-1 out, the rest old.
        (in_place("draining", 1, ("blue-0",)), BLUE, ["blue-0"], ["blue-2", "blue-3"]),
        # Batch 2 held: blue-1 is back, replaced, and judged with blue-0.
        (
            in_place("holding", 1, ("blue-0", "blue-1")),
            BLUE,
            ["blue-0", "blue-1"],
            ["blue-2", "blue-3"],
        ),
        # The last batch held: nothing old left to compare with.
        (in_place("holding", 3, BLUE), BLUE, list(BLUE), []),
        # Reverting blue-1 (newest first): it is out; blue-0 still runs the new version.
        (
            replace(
                in_place("revert-draining", 1, ("blue-0", "blue-1")), reverting=("blue-1", "blue-0")
            ),
            BLUE,
            [],
            ["blue-2", "blue-3"],
        ),
        (surge("gating", 0), POOL_SURGE, [], list(BLUE)),
        (surge("holding", 0), POOL_SURGE, ["green-0"], ["blue-2", "blue-3"]),
        (surge("holding", 1), POOL_SURGE, ["green-0", "green-1"], []),
    ],
    ids=[
        "in place draining",
        "in place holding",
        "in place last batch",
        "in place reverting",
        "surge gating",
        "surge first move",
        "surge last move",
    ],
)
def test_sides(rollout: PoolRollout, pool: tuple[str, ...], new: list[str], old: list[str]) -> None:
    assert observe.sides(rollout, pool) == (new, old)


def test_fold_judges_increments_of_the_new_side_against_the_old() -> None:
    rollout = in_place("holding", 0, ("blue-0",))
    run = Run(0.0)
    counts = {name: (1000, 0) for name in BLUE}
    observe.fold(run, rollout, counts, BLUE)
    first = run.verdict
    assert first is not None
    assert first.outcome == "inconclusive"
    assert run.new_requests == 0  # the first report is the reference, not an increment
    worse = None
    for tick in range(1, 30):
        # blue-0 fails 20 % of 20 requests a tick; the three old ones answer everything.
        counts = {name: (1000 + 20 * tick, 0) for name in BLUE[1:]}
        counts["blue-0"] = (1000 + 20 * tick, 4 * tick)
        observe.fold(run, rollout, counts, BLUE)
        if run.verdict is not None and run.verdict.outcome == "worse":
            worse = tick
            break
    assert worse is not None
    assert worse <= 10, worse
    assert run.new_errors == 4 * worse
    assert run.old_errors == 0
    assert run.old_requests == 3 * run.new_requests


def test_fold_calls_a_same_error_rate_not_worse_after_min_requests() -> None:
    rollout = in_place("holding", 0, ("blue-0",))
    run = Run(0.0)
    for tick in range(0, 40):
        # 1 % errors everywhere, on every backend.
        counts = {name: (100 * tick, tick) for name in BLUE}
        observe.fold(run, rollout, counts, BLUE)
    assert run.verdict is not None
    assert run.verdict.outcome == "not-worse", run.verdict


def test_fold_has_no_verdict_without_an_old_side() -> None:
    run = Run(0.0)
    rollout = in_place("holding", 3, BLUE)
    observe.fold(run, rollout, {n: (10, 5) for n in BLUE}, BLUE)
    observe.fold(run, rollout, {n: (20, 10) for n in BLUE}, BLUE)
    assert run.verdict is None
    assert run.new_requests == 0


@pytest.mark.parametrize(
    ("check", "fresh", "at_stage", "healthy"),
    [
        # Waiting on its checks: two passing probes in a row, both since the stage began.
        (Checks(12, 2, True), True, 10, True),
        (Checks(11, 5, True), True, 10, False),  # one since: the others predate the hook
        (Checks(12, 1, True), True, 10, False),  # the streak is one long
        (Checks(12, 2, False), True, 10, False),  # not routable (ejected)
        (Checks(3, 2, True), True, None, False),  # no count at the stage's start: from now
        # Not waiting: routable is enough.
        (Checks(12, 0, True), False, 10, True),
        (Checks(12, 9, False), False, 10, False),
    ],
)
def test_healthy(check: Checks, fresh: bool, at_stage: int | None, healthy: bool) -> None:
    probes_at_stage = {} if at_stage is None else {"blue-0": at_stage}
    seen = observe.healthy({"blue-0": check}, ["blue-0"] if fresh else [], probes_at_stage, 2)
    assert ("blue-0" in seen) is healthy


@pytest.mark.parametrize(
    ("rollout", "waiting"),
    [
        (in_place("waiting-healthy", 1), ("blue-1",)),
        (
            replace(in_place("revert-waiting-healthy", 1), reverting=("blue-1", "blue-0")),
            ("blue-1",),
        ),
        (surge("gating", 0), ("green-0", "green-1")),
        (in_place("holding", 1), ()),
        (in_place("draining", 1), ()),
    ],
)
def test_waiting_on_checks(rollout: PoolRollout, waiting: tuple[str, ...]) -> None:
    assert observe.waiting_on_checks(rollout) == waiting


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ([(7, {("blue", "blue-1"): 0}), (7, {})], 0),
        ([(7, {("blue", "blue-1"): 2}), (8, {("blue", "blue-1"): 1})], 3),
        ([(7, {("blue", "blue-2"): 9})], 0),  # another backend's requests
        ([(6, {}), (7, {})], 1),  # a report from before the drain's revision
        ([(6, {("blue", "blue-1"): 4})], 4),
    ],
)
def test_in_flight(reports: list[tuple[int, dict[tuple[str, str], int]]], expected: int) -> None:
    assert observe.in_flight(reports, "blue", ("blue-1",), 7) == expected


def test_a_stage_is_the_same_across_a_pause() -> None:
    rollout = in_place("replacing", 1)
    paused = plan.pause(rollout, 5.0, "alice").rollout
    resumed = plan.resume(paused, 9.0, "alice").rollout
    assert resumed.stage_started != rollout.stage_started
    assert observe.stage_key(resumed) == observe.stage_key(rollout)
