"""The pool rollout's machine, synchronously: each stage, each deadline, revert and rollback."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.control.rolling import plan
from proxy.control.rolling.model import (
    Action,
    HookAction,
    HookResult,
    PoolRollout,
    RollSpec,
    Seen,
    Stage,
    Step,
)
from proxy.control.rollout.judge import Verdict

BLUE = ("blue-0", "blue-1", "blue-2")
ALL = frozenset(BLUE)
NOT_WORSE = Verdict("not-worse", None, "not worse: 400 requests")
INCONCLUSIVE = Verdict("inconclusive", None, "inconclusive: 12 of 300 requests")
WORSE = Verdict("worse", "errors", "5xx rate 20.0 % vs 0.1 %")
SLOWER = Verdict("worse", "latency", "slow responses 30 % vs 10 %")
IN_PLACE = RollSpec("in-place", hook_command=("./deploy.sh",))
NEW = (("green-0", "http://10.0.0.8:8080"), ("green-1", "http://10.0.0.9:8080"))
SURGE = RollSpec("surge", batch=2, new_backends=NEW)
OLD = ("blue-0", "blue-1", "blue-2", "blue-3")
GREEN = frozenset(name for name, _ in NEW)


def in_place(
    stage: Stage = "draining", batch: int = 0, replaced: tuple[str, ...] = (), **spec: object
) -> PoolRollout:
    rollout = plan.start("blue", replace(IN_PLACE, **spec), BLUE, 0.0).rollout
    return replace(rollout, stage=stage, batch=batch, replaced=replaced)


def surge(stage: Stage = "gating", batch: int = 0) -> PoolRollout:
    rollout = plan.start("blue", SURGE, OLD, 0.0).rollout
    replaced = OLD[: 2 * (batch + 1)] if stage != "gating" else ()
    return replace(rollout, stage=stage, batch=batch, replaced=replaced)


def ok(backend: str, action: HookAction = "replace") -> HookResult:
    return HookResult(backend, action, True, "exit status 0")


def failed(backend: str, action: HookAction = "replace") -> HookResult:
    tail = ("pulling image", "error: no space left on device")
    return HookResult(backend, action, False, "exit status 3", tail)


def must(step: Step | None) -> Step:
    assert step is not None
    return step


@pytest.mark.parametrize(
    ("names", "size", "expected"),
    [
        (("a", "b", "c"), 1, (("a",), ("b",), ("c",))),
        (("a", "b", "c"), 2, (("a", "b"), ("c",))),
        (("a", "b", "c", "d"), 2, (("a", "b"), ("c", "d"))),
        (("a", "b"), 5, (("a", "b"),)),
        ((), 1, ()),
    ],
)
def test_batches(names: tuple[str, ...], size: int, expected: object) -> None:
    assert plan.batches(names, size) == expected


def test_a_batch_of_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="batch must be at least 1"):
        plan.batches(("a",), 0)


@pytest.mark.parametrize(
    ("names", "groups", "expected"),
    [
        (("x", "y"), 2, (("x",), ("y",))),
        (("x", "y", "z"), 2, (("x", "y"), ("z",))),
        (("x",), 2, (("x",), ())),  # the last batch's old backends drain onto the others
    ],
)
def test_spread(names: tuple[str, ...], groups: int, expected: object) -> None:
    assert plan.spread(names, groups) == expected


@pytest.mark.parametrize(
    ("spec", "backends", "message"),
    [
        (IN_PLACE, (), "no backends"),
        (RollSpec("in-place"), BLUE, "exactly one hook"),
        (replace(IN_PLACE, hook_url="http://hooks/roll"), BLUE, "exactly one hook"),
        (RollSpec("surge"), BLUE, "new_backends: surge needs"),
        (replace(SURGE, new_backends=(("blue-1", "http://x"),)), BLUE, "blue-1 already in"),
    ],
)
def test_start_refuses_what_cannot_run(
    spec: RollSpec, backends: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan.start("blue", spec, backends, 0.0)


def test_in_place_starts_by_draining_the_first_batch() -> None:
    step = plan.start("blue", replace(IN_PLACE, batch=2), BLUE, 5.0)
    assert step.event == "started"
    assert step.action == Action("drain", states=(("blue-0", "drain"), ("blue-1", "drain")))
    assert step.rollout.batches == (("blue-0", "blue-1"), ("blue-2",))
    assert step.rollout.reason == "started: batch 1/2 (blue-0, blue-1): draining"


@pytest.mark.parametrize(
    ("stage", "seen", "next_stage", "action"),
    [
        ("draining", Seen(10.0, in_flight=2), None, None),
        ("draining", Seen(10.0), "replacing", Action("run-hook", hooks=("blue-1",), hook="replace")),
        ("replacing", Seen(10.0), None, None),  # the hook still runs
        ("replacing", Seen(10.0, hooks=(ok("blue-0"),)), None, None),  # another backend's
        ("replacing", Seen(10.0, hooks=(ok("blue-1", "revert"),)), None, None),
        ("replacing", Seen(10.0, hooks=(ok("blue-1"),)), "waiting-healthy", Action("none")),
        ("waiting-healthy", Seen(299.0, healthy=ALL - {"blue-1"}), None, None),
        ("waiting-healthy", Seen(10.0, healthy=ALL), "holding", Action("readmit", states=(("blue-1", "ready"),))),
        ("holding", Seen(29.0, healthy=ALL, verdict=NOT_WORSE), None, None),
        ("holding", Seen(31.0, healthy=ALL, verdict=NOT_WORSE), "draining", Action("drain", states=(("blue-2", "drain"),))),
        # After its time, no evidence against the batch is enough (no data is never failure).
        ("holding", Seen(31.0, healthy=ALL, verdict=INCONCLUSIVE), "draining", Action("drain", states=(("blue-2", "drain"),))),
    ],
)  # fmt: skip
def test_in_place_stages(
    stage: Stage, seen: Seen, next_stage: Stage | None, action: Action | None
) -> None:
    step = plan.advance(in_place(stage, batch=1, replaced=("blue-0",)), seen)
    assert (step.rollout.stage if step else None) == next_stage
    assert (step.action if step else None) == action
    if step is not None:
        assert step.rollout.phase == "progressing"
        assert step.rollout.stage_started == seen.now


def test_a_successful_hook_marks_the_batch_replaced() -> None:
    rollout = in_place("replacing", batch=1, replaced=("blue-0",))
    step = must(plan.advance(rollout, Seen(10.0, hooks=(ok("blue-1"),))))
    assert step.rollout.replaced == ("blue-0", "blue-1")
    assert step.rollout.reason == "batch 2/3 (blue-1): replaced; waiting for its checks"


def test_a_batch_of_two_waits_for_both_hooks() -> None:
    rollout = in_place("replacing", batch=2)
    rollout = replace(rollout, batches=(("blue-0", "blue-1"),), batch=0)
    assert plan.advance(rollout, Seen(10.0, hooks=(ok("blue-0"),))) is None
    step = must(plan.advance(rollout, Seen(10.0, hooks=(ok("blue-0"), failed("blue-1")))))
    assert "hook failed on blue-1: exit status 3" in step.rollout.reason


@pytest.mark.parametrize(
    ("stage", "seen", "cause", "why"),
    [
        ("draining", Seen(61.0, in_flight=2), "drain-timeout", "2 requests still in flight after 61 s draining"),
        ("replacing", Seen(5.0, hooks=(failed("blue-1"),)), "hook", "hook failed: exit status 3 (last output: pulling image | error: no space left on device)"),
        ("waiting-healthy", Seen(300.0, healthy=ALL - {"blue-1"}), "unhealthy", "blue-1 not healthy 5 min after the hook"),
        ("holding", Seen(5.0, healthy=ALL - {"blue-1"}, verdict=NOT_WORSE), "unhealthy", "blue-1 failed its checks while held"),
        ("holding", Seen(5.0, healthy=ALL, verdict=WORSE), "errors", "5xx rate 20.0 % vs 0.1 %"),
        ("holding", Seen(5.0, healthy=ALL, verdict=SLOWER), "latency", "slow responses 30 % vs 10 %"),
    ],
)  # fmt: skip
def test_each_failure_without_auto_revert_aborts_at_once(
    stage: Stage, seen: Seen, cause: str, why: str
) -> None:
    replaced = ("blue-0", "blue-1") if stage in ("waiting-healthy", "holding") else ("blue-0",)
    rollout = in_place(stage, batch=1, replaced=replaced, auto_revert=False)
    step = must(plan.advance(rollout, seen))
    assert (step.event, step.rollout.phase, step.rollout.cause) == ("aborted", "aborted", cause)
    assert step.rollout.reason.startswith(f"aborted: batch 2/3 (blue-1): {why}")


@pytest.mark.parametrize(
    ("stage", "action", "left"),
    [
        ("draining", Action("readmit", states=(("blue-1", "ready"),)), False),  # never touched
        ("replacing", Action("none"), True),  # already drained; its version is in doubt
        ("holding", Action("drain", states=(("blue-1", "drain"),)), True),  # judged worse
    ],
)
def test_without_auto_revert_a_touched_batch_stays_drained(
    stage: Stage, action: Action, left: bool
) -> None:
    rollout = in_place(stage, batch=1, replaced=("blue-0",), auto_revert=False)
    step = plan.abort(rollout, 5.0, "ops")
    assert step.action == action
    assert ("blue-1 left drained, not reverted (auto_revert off)" in step.rollout.reason) == left
    assert step.rollout.cause == "manual"


def test_a_failed_first_drain_readmits_and_aborts() -> None:
    step = must(plan.advance(in_place("draining"), Seen(60.0, in_flight=1)))
    assert (step.rollout.phase, step.rollout.cause) == ("aborted", "drain-timeout")
    assert step.action == Action("readmit", states=(("blue-0", "ready"),))


def test_a_failed_drain_readmits_the_batch_in_the_write_that_starts_the_revert() -> None:
    step = must(plan.advance(in_place("draining", 1, ("blue-0",)), Seen(60.0, in_flight=1)))
    assert step.rollout.reverting == ("blue-0",)
    assert step.action == Action("drain", states=(("blue-1", "ready"), ("blue-0", "drain")))


def test_a_failed_hook_reverts_its_backend_first_with_the_output_in_the_reason() -> None:
    rollout = in_place("replacing", batch=1, replaced=("blue-0",))
    step = must(plan.advance(rollout, Seen(5.0, hooks=(failed("blue-1"),))))
    assert (step.event, step.rollout.stage, step.rollout.cause) == (
        "reverting",
        "revert-draining",
        "hook",
    )
    assert step.rollout.reverting == ("blue-1", "blue-0")
    assert step.rollout.reason == (
        "reverting blue-1 (newest first) after batch 2/3 (blue-1): hook failed: exit status 3 "
        "(last output: pulling image | error: no space left on device)"
    )  # fmt: skip


def test_auto_revert_goes_newest_first_through_the_safe_sequence_then_aborts() -> None:
    rollout = in_place("holding", batch=2, replaced=BLUE)
    step = must(plan.advance(rollout, Seen(5.0, healthy=ALL, verdict=WORSE)))
    assert step.action == Action("drain", states=(("blue-2", "drain"),))
    writes = [step.action]
    now = 5.0
    for name in ("blue-2", "blue-1", "blue-0"):
        rollout = step.rollout
        assert (rollout.phase, rollout.stage, rollout.reverting[0]) == (
            "progressing",
            "revert-draining",
            name,
        )
        assert plan.advance(rollout, Seen(now, in_flight=1)) is None
        step = must(plan.advance(rollout, Seen(now)))
        assert step.action == Action("run-hook", hooks=(name,), hook="revert")
        assert step.rollout.reason.startswith(f"reverting {name}: running the revert hook")
        step = must(plan.advance(step.rollout, Seen(now, hooks=(ok(name, "revert"),))))
        assert step.rollout.stage == "revert-waiting-healthy"
        assert plan.advance(step.rollout, Seen(now, healthy=ALL - {name})) is None
        step = must(plan.advance(step.rollout, Seen(now, healthy=ALL)))
        writes.append(step.action)
        now += 1.0
    assert writes[1:] == [
        Action("drain", states=(("blue-2", "ready"), ("blue-1", "drain"))),
        Action("drain", states=(("blue-1", "ready"), ("blue-0", "drain"))),
        Action("readmit", states=(("blue-0", "ready"),)),
    ]
    done = step.rollout
    assert (step.event, done.phase, done.cause, done.replaced) == (
        "aborted",
        "aborted",
        "errors",
        (),
    )
    assert done.reason == (
        "aborted: batch 3/3 (blue-2): 5xx rate 20.0 % vs 0.1 %; every replaced backend reverted"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "seen", "why"),
    [
        ("revert-draining", Seen(60.0, in_flight=3), "blue-1: 3 requests still in flight after 60 s"),
        ("reverting", Seen(5.0, hooks=(failed("blue-1", "revert"),)), "blue-1: hook failed: exit status 3"),
        ("revert-waiting-healthy", Seen(300.0, healthy=ALL - {"blue-1"}), "blue-1 not healthy 5 min after the revert hook"),
    ],
)  # fmt: skip
def test_a_failed_revert_stops_where_it_stands(stage: Stage, seen: Seen, why: str) -> None:
    rollout = replace(
        in_place(stage, batch=1, replaced=("blue-0", "blue-1")),
        reverting=("blue-1", "blue-0"),
        failure="batch 2/3 (blue-1): 5xx rate 20.0 % vs 0.1 %",
        cause="errors",
    )
    step = must(plan.advance(rollout, seen))
    assert (step.rollout.phase, step.rollout.cause, step.action) == (
        "aborted",
        "errors",
        Action("none"),
    )
    assert step.rollout.reason.startswith(
        f"aborted: batch 2/3 (blue-1): 5xx rate 20.0 % vs 0.1 %; revert stopped: {why}"
    )
    assert step.rollout.reason.endswith("not reverted: blue-1, blue-0")


def test_the_last_batch_promotes_after_its_hold() -> None:
    rollout = in_place("holding", batch=2, replaced=BLUE)
    step = must(plan.advance(rollout, Seen(30.0, healthy=ALL)))
    assert (step.event, step.rollout.phase, step.action) == ("promoted", "promoted", Action("none"))
    assert step.rollout.reason == "promoted after batch 3/3 (blue-2) held 30 s"


def test_surge_starts_by_adding_the_new_backends_in_maint() -> None:
    step = plan.start("blue", SURGE, OLD, 0.0)
    assert step.action == Action("add-backends", add=NEW)
    assert step.rollout.batches == (("blue-0", "blue-1"), ("blue-2", "blue-3"))
    assert step.rollout.new_batches == (("green-0",), ("green-1",))
    assert step.rollout.stage == "gating"


MOVE_0 = Action("move", states=(("green-0", "ready"), ("blue-0", "drain"), ("blue-1", "drain")))
MOVE_1 = Action("move", states=(("green-1", "ready"), ("blue-2", "drain"), ("blue-3", "drain")))
KEEP = Action("keep-old", states=tuple((name, "maint") for name in OLD))
ROLLBACK = Action(
    "rollback",
    states=(*((name, "ready") for name in OLD), ("green-0", "drain"), ("green-1", "drain")),
)


@pytest.mark.parametrize(
    ("stage", "batch", "seen", "event", "next_stage", "action"),
    [
        ("gating", 0, Seen(10.0, healthy=frozenset({"green-0"})), None, None, None),
        ("gating", 0, Seen(10.0, healthy=GREEN), "stage", "holding", MOVE_0),
        ("gating", 0, Seen(300.0, healthy=frozenset({"green-0"})), "aborted", "gating", ROLLBACK),
        ("holding", 0, Seen(29.0, healthy=GREEN, verdict=NOT_WORSE), None, None, None),
        ("holding", 0, Seen(30.0, healthy=GREEN, verdict=NOT_WORSE), "stage", "holding", MOVE_1),
        ("holding", 0, Seen(5.0, healthy=GREEN, verdict=WORSE), "aborted", "holding", ROLLBACK),
        ("holding", 0, Seen(5.0, healthy=frozenset({"green-1"})), "aborted", "holding", ROLLBACK),
        (
            "holding",
            0,
            Seen(5.0, healthy=frozenset({"green-0"})),
            None,
            None,
            None,
        ),  # green-1 not moved yet
        ("holding", 1, Seen(30.0, healthy=GREEN), "stage", "keeping-old", KEEP),
        ("keeping-old", 1, Seen(599.0), None, None, None),
        (
            "keeping-old",
            1,
            Seen(600.0),
            "promoted",
            "keeping-old",
            Action("remove-old", remove=OLD),
        ),
    ],
)
def test_surge_stages(
    stage: Stage,
    batch: int,
    seen: Seen,
    event: str | None,
    next_stage: Stage | None,
    action: Action | None,
) -> None:
    step = plan.advance(surge(stage, batch), seen)
    assert (step.event if step else None) == event
    assert (step.rollout.stage if step else None) == next_stage
    assert (step.action if step else None) == action


def test_surge_reasons_name_the_move_and_the_rollback() -> None:
    step = must(plan.advance(surge("gating"), Seen(10.0, healthy=GREEN)))
    assert step.rollout.reason == (
        "at batch 1/2 (blue-0, blue-1 → green-0): moved, held and judged, "
        "after green-0, green-1 healthy"
    )
    assert step.rollout.replaced == ("blue-0", "blue-1")
    step = must(plan.advance(step.rollout, Seen(15.0, healthy=GREEN, verdict=WORSE)))
    assert (step.rollout.phase, step.rollout.cause) == ("aborted", "errors")
    assert step.rollout.reason == (
        "aborted: batch 1/2 (blue-0, blue-1 → green-0): 5xx rate 20.0 % vs 0.1 %; "
        "rolled back in one write: blue-0, blue-1, blue-2, blue-3 ready"
    )


def test_abort_while_keeping_old_is_still_one_write() -> None:
    step = plan.abort(surge("keeping-old", 1), 100.0, "ops")
    assert (step.event, step.rollout.cause, step.action) == ("aborted", "manual", ROLLBACK)
    assert step.rollout.reason.startswith("aborted: aborted by ops at keeping blue-0, blue-1")


def test_a_paused_rollout_waits_and_resume_restarts_the_stage_clock() -> None:
    rollout = in_place("waiting-healthy", batch=1, replaced=("blue-0", "blue-1"))
    paused = plan.pause(rollout, 100.0, "ops")
    assert (paused.event, paused.rollout.phase) == ("paused", "paused")
    assert paused.rollout.reason == "paused by ops at batch 2/3 (blue-1)"
    assert plan.advance(paused.rollout, Seen(1000.0, healthy=frozenset())) is None
    resumed = plan.resume(paused.rollout, 1000.0, "ops")
    assert (resumed.rollout.phase, resumed.rollout.stage_started) == ("progressing", 1000.0)
    # The healthy deadline counts from the resume, not from the stage's first start.
    assert plan.advance(resumed.rollout, Seen(1200.0, healthy=frozenset())) is None
    step = must(plan.advance(resumed.rollout, Seen(1300.0, healthy=frozenset())))
    assert step.rollout.cause == "unhealthy"


@pytest.mark.parametrize("phase", ["paused", "promoted", "aborted"])
def test_only_a_progressing_rollout_advances(phase: str) -> None:
    rollout = replace(in_place("holding"), phase=phase)
    assert plan.advance(rollout, Seen(1000.0, verdict=WORSE)) is None


def test_abort_by_a_person_reverts_in_place() -> None:
    rollout = plan.pause(in_place("holding", batch=1, replaced=("blue-0", "blue-1")), 5.0, "ops")
    step = plan.abort(rollout.rollout, 6.0, "ops")
    assert (step.rollout.phase, step.rollout.cause) == ("progressing", "manual")
    assert step.rollout.reverting == ("blue-1", "blue-0")
    assert step.rollout.reason == (
        "reverting blue-1 (newest first) after aborted by ops at batch 2/3 (blue-1)"
    )


def test_abort_while_reverting_stops_the_revert() -> None:
    rollout = replace(
        in_place("reverting", batch=1, replaced=("blue-0", "blue-1")),
        reverting=("blue-0",),
        failure="batch 2/3 (blue-1): hook failed: exit status 3",
        cause="hook",
    )
    step = plan.abort(rollout, 6.0, "ops")
    assert (step.rollout.phase, step.rollout.cause) == ("aborted", "hook")
    assert step.rollout.reason == (
        "aborted: batch 2/3 (blue-1): hook failed: exit status 3; "
        "revert stopped: aborted by ops at reverting blue-0; not reverted: blue-0"
    )


PURE = {
    "__future__",
    "collections.abc",
    "dataclasses",
    "typing",
    "proxy.control.rollout.judge",
    "proxy.control.rollout.model",
    "router.spec",
}


def test_the_machine_does_no_io() -> None:
    # The controller imports these; they import values and each other, never I/O or asyncio
    # (the package proxy.control itself loads the plane, so sys.modules cannot tell).
    package = Path(plan.__file__).parent
    # The machine's modules; hooks.py (the runner) and output.py are the controller's side.
    machine = ("__init__", "model", "plan", "inplace", "surge", "words", "observe")
    for source in (package / f"{name}.py" for name in machine):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {node.module or ""}
            else:
                continue
            for name in imported:
                assert name in PURE or name.startswith("proxy.control.rolling"), (source, name)


@pytest.mark.parametrize(
    ("rollout", "action"),
    [
        (in_place("draining", 1), Action("drain", states=(("blue-1", "drain"),))),
        (in_place("replacing", 1), Action("run-hook", hooks=("blue-1",), hook="replace")),
        (in_place("waiting-healthy", 1), Action("none")),
        (in_place("holding", 1), Action("readmit", states=(("blue-1", "ready"),))),
        (replace(in_place("reverting", 1), reverting=("blue-0",)), Action("run-hook", hooks=("blue-0",), hook="revert")),
        (replace(in_place("revert-draining", 1), reverting=("blue-0",)), Action("drain", states=(("blue-0", "drain"),))),
        (replace(in_place("holding", 1), phase="aborted"), Action("none")),
        (surge("gating"), Action("add-backends", add=NEW)),
        (surge("holding", 0), MOVE_0),
        (surge("holding", 1), Action("move", states=(("green-0", "ready"), ("green-1", "ready"), *((n, "drain") for n in OLD)))),
        (surge("keeping-old", 1), KEEP),
    ],
)  # fmt: skip
def test_pending_is_what_a_restart_performs_again(rollout: PoolRollout, action: Action) -> None:
    assert plan.pending(rollout) == action
