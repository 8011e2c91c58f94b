"""In place: each batch drained, replaced by the hook, health-gated, readmitted and held.

Theory of operation. A batch's backends go through four stages, each waiting on one fact the
controller reports in `Seen`, each with a deadline measured from the stage's start:

    draining        (drain written)   in-flight 0           drain_timeout     -> replacing
    replacing       (hooks started)   every hook ok         the hook's own timeout (a result)
    waiting-healthy                   every backend healthy healthy_deadline  -> holding
    holding         (readmit written) min_healthy_time, no backend unhealthy, judge not worse

The hook never runs on a backend that still serves a request: the classic race (the instance
stopped before the proxy stopped sending to it) cannot happen. After the last batch's hold
the rollout is promoted.

A failure, with `auto_revert`, reverts every backend whose replace hook ran (a failed hook may
have replaced half a program), newest first, one at a time, through the same safe sequence
(revert-draining, reverting, revert-waiting-healthy, then readmitted in the same write that
drains the next), and ends aborted with the failure's cause and reason. A failure of the revert
itself stops there: that backend stays drained and the reason names those not reverted.
Without `auto_revert` the rollout is aborted at once; a batch whose hook ran stays drained (its
version is in doubt), one that was only draining is readmitted.
"""

from __future__ import annotations

from dataclasses import replace

from proxy.control.rolling.model import (
    NONE,
    Action,
    Cause,
    HookAction,
    HookResult,
    PoolRollout,
    Seen,
    Stage,
    Step,
)
from proxy.control.rolling.words import duration, hold_failure, names, tail, where
from router.spec import AdminState

TOUCHED: tuple[Stage, ...] = ("replacing", "waiting-healthy", "holding")
"""The stages in which the batch's replace hook has run (or is running)."""


def start(rollout: PoolRollout) -> Step:
    first = rollout.current
    reason = f"started: {where(rollout)}: draining"
    return Step(replace(rollout, stage="draining", reason=reason), "started", drain(first))


def advance(rollout: PoolRollout, seen: Seen) -> Step | None:
    if rollout.reverting:
        return _advance_revert(rollout, seen)
    spec = rollout.spec
    batch = rollout.current
    elapsed = seen.now - rollout.stage_started
    if rollout.stage == "draining":
        if seen.in_flight == 0:
            return _stage(rollout, seen.now, "replacing", run_hook(batch, "replace"))
        if elapsed >= spec.drain_timeout:
            why = f"{seen.in_flight} requests still in flight after {duration(elapsed)} draining"
            return fail(rollout, seen.now, "drain-timeout", f"{where(rollout)}: {why}")
        return None
    if rollout.stage == "replacing":
        failed, done = _hooks(seen, batch, "replace")
        if failed is not None:
            return fail(rollout, seen.now, "hook", _hook_failure(rollout, failed, batch))
        if done:
            moved = replace(rollout, replaced=rollout.replaced + batch)
            return _stage(moved, seen.now, "waiting-healthy", NONE)
        return None  # the hook's timeout is its runner's: it arrives as a failed result
    if rollout.stage == "waiting-healthy":
        if all(name in seen.healthy for name in batch):
            return _stage(rollout, seen.now, "holding", readmit(batch))
        if elapsed >= spec.healthy_deadline:
            waiting = names(name for name in batch if name not in seen.healthy)
            why = f"{waiting} not healthy {duration(elapsed)} after the hook"
            return fail(rollout, seen.now, "unhealthy", f"{where(rollout)}: {why}")
        return None
    # holding
    failure = hold_failure(rollout, batch, seen)
    if failure is not None:
        return fail(rollout, seen.now, *failure)
    verdict = seen.verdict
    if elapsed < spec.min_healthy_time:
        return None
    held = f"after {where(rollout)} held {duration(elapsed)}"
    if verdict is not None:
        held += f": {verdict.reason}"
    if rollout.batch + 1 == len(rollout.batches):
        promoted = replace(rollout, phase="promoted", reason=f"promoted {held}", updated=seen.now)
        return Step(promoted, "promoted")
    moved = replace(rollout, batch=rollout.batch + 1, stage="draining", stage_started=seen.now)
    reason = f"at {where(moved)}: draining, {held}"
    return Step(replace(moved, reason=reason, updated=seen.now), "stage", drain(moved.current))


def fail(rollout: PoolRollout, now: float, cause: Cause, why: str) -> Step:
    """The batch failed (or a person aborted): revert newest first, or stop at once."""
    batch = rollout.current
    touched = rollout.stage in TOUCHED
    if not rollout.spec.auto_revert:
        if touched:
            left = f"; {names(batch)} left drained, not reverted (auto_revert off)"
            action = drain(batch) if rollout.stage == "holding" else NONE
        else:
            left, action = "", readmit(batch)
        return Step(_aborted(rollout, now, cause, why + left), "aborted", action)
    ran = rollout.replaced + tuple(n for n in batch if touched and n not in rollout.replaced)
    queue = tuple(reversed(ran))
    back: tuple[str, ...] = () if touched else batch
    if not queue:
        return Step(_aborted(rollout, now, cause, why), "aborted", readmit(back))
    reverting = replace(
        rollout,
        phase="progressing",
        stage="revert-draining",
        stage_started=now,
        reverting=queue,
        failure=why,
        cause=cause,
        updated=now,
    )
    reason = f"reverting {queue[0]} (newest first) after {why}"
    return Step(replace(reverting, reason=reason), "reverting", drain(queue[:1], ready=back))


def stop_revert(rollout: PoolRollout, now: float, why: str) -> Step:
    """The revert cannot go on: abort where it stands, saying what is left undone."""
    left = names(rollout.reverting)
    reason = f"{rollout.failure}; revert stopped: {why}; not reverted: {left}"
    done = replace(rollout, phase="aborted", reason=f"aborted: {reason}", updated=now)
    return Step(done, "aborted")


def _advance_revert(rollout: PoolRollout, seen: Seen) -> Step | None:
    spec = rollout.spec
    name = rollout.reverting[0]
    elapsed = seen.now - rollout.stage_started
    if rollout.stage == "revert-draining":
        if seen.in_flight == 0:
            return _stage(rollout, seen.now, "reverting", run_hook((name,), "revert"))
        if elapsed >= spec.drain_timeout:
            why = f"{name}: {seen.in_flight} requests still in flight after {duration(elapsed)}"
            return stop_revert(rollout, seen.now, why)
        return None
    if rollout.stage == "reverting":
        failed, done = _hooks(seen, (name,), "revert")
        if failed is not None:
            why = f"{name}: hook failed: {failed.reason}{tail(failed.tail)}"
            return stop_revert(rollout, seen.now, why)
        return _stage(rollout, seen.now, "revert-waiting-healthy", NONE) if done else None
    # revert-waiting-healthy
    if name not in seen.healthy:
        if elapsed >= spec.healthy_deadline:
            why = f"{name} not healthy {duration(elapsed)} after the revert hook"
            return stop_revert(rollout, seen.now, why)
        return None
    rest = rollout.reverting[1:]
    replaced = tuple(n for n in rollout.replaced if n != name)
    if not rest:
        reason = f"aborted: {rollout.failure}; every replaced backend reverted"
        ended = replace(
            rollout,
            phase="aborted",
            reason=reason,
            reverting=(),
            replaced=replaced,
            updated=seen.now,
        )
        return Step(ended, "aborted", readmit((name,)))
    moved = replace(rollout, reverting=rest, replaced=replaced)
    return _stage(moved, seen.now, "revert-draining", drain(rest[:1], ready=(name,)))


def drain(backends: tuple[str, ...], ready: tuple[str, ...] = ()) -> Action:
    states: tuple[tuple[str, AdminState], ...] = tuple((n, "ready") for n in ready)
    return Action("drain", states=states + tuple((n, "drain") for n in backends))


def readmit(backends: tuple[str, ...]) -> Action:
    if not backends:
        return NONE
    return Action("readmit", states=tuple((n, "ready") for n in backends))


def run_hook(backends: tuple[str, ...], hook: HookAction) -> Action:
    return Action("run-hook", hooks=backends, hook=hook)


def _stage(rollout: PoolRollout, now: float, stage: Stage, action: Action) -> Step:
    moved = replace(rollout, stage=stage, stage_started=now, updated=now)
    words = {
        "replacing": "running the replace hook",
        "waiting-healthy": "replaced; waiting for its checks",
        "holding": "healthy; readmitted with slow start, held and judged",
        "revert-draining": "draining",
        "reverting": "running the revert hook",
        "revert-waiting-healthy": "reverted; waiting for its checks",
    }
    reason = f"{where(moved)}: {words.get(stage, stage)}"
    if rollout.reverting:
        reason += f" (newest first) after {rollout.failure}"
    return Step(replace(moved, reason=reason), "stage", action)


def _hooks(
    seen: Seen, backends: tuple[str, ...], action: HookAction
) -> tuple[HookResult | None, bool]:
    """The first failed hook among the backends', and whether every one finished."""
    results = {r.backend: r for r in seen.hooks if r.action == action and r.backend in backends}
    failed = next((r for r in results.values() if not r.ok), None)
    return failed, len(results) == len(backends)


def _hook_failure(rollout: PoolRollout, failed: HookResult, batch: tuple[str, ...]) -> str:
    on = f" on {failed.backend}" if len(batch) > 1 else ""
    return f"{where(rollout)}: hook failed{on}: {failed.reason}{tail(failed.tail)}"


def _aborted(rollout: PoolRollout, now: float, cause: Cause, why: str) -> PoolRollout:
    return replace(rollout, phase="aborted", cause=cause, reason=f"aborted: {why}", updated=now)
