"""Surge: the new version on new addresses takes the old backends' traffic a batch at a time.

Theory of operation.

    gating       (new backends added in maint)  every new backend healthy  healthy_deadline
    holding      (move: new ready, old drain)   min_healthy_time, the moved new backends
                                                healthy, judge not worse -> the next move
    keeping-old  (old -> maint, still probed)   keep_old -> old removed, promoted

The judge compares the new backends in service with the old ones not yet moved (the last batch
has none left: its hold only lasts its time). Until the old backends are removed, every failure
and every abort is the same single write (`rollback`: every old backend ready, every new one
drained), which every worker acknowledges before the rollout reads aborted: an instant rollback,
where a rolling one would go back through every instance. The new backends stay in the pool,
drained, for a person to look at.
"""

from __future__ import annotations

from dataclasses import replace

from proxy.control.rolling.model import Action, Cause, PoolRollout, Seen, Step
from proxy.control.rolling.words import duration, hold_failure, names, where
from router.spec import AdminState


def start(rollout: PoolRollout) -> Step:
    gating = replace(rollout, stage="gating")
    reason = f"started: {names(gating.new)} added in maint; {where(gating)} on their checks"
    action = Action("add-backends", add=rollout.spec.new_backends)
    return Step(replace(gating, reason=reason), "started", action)


def advance(rollout: PoolRollout, seen: Seen) -> Step | None:
    spec = rollout.spec
    elapsed = seen.now - rollout.stage_started
    if rollout.stage == "gating":
        sick = [name for name in rollout.new if name not in seen.healthy]
        if not sick:
            return _move(rollout, seen.now, 0, f"{names(rollout.new)} healthy")
        if elapsed >= spec.healthy_deadline:
            why = f"{where(rollout)}: {names(sick)} not healthy after {duration(elapsed)}"
            return rollback(rollout, seen.now, "unhealthy", why)
        return None
    if rollout.stage == "keeping-old":
        if elapsed < spec.keep_old:
            return None
        reason = f"promoted: {where(rollout)} for {duration(elapsed)}, now removed"
        done = replace(rollout, phase="promoted", reason=reason, updated=seen.now)
        return Step(done, "promoted", Action("remove-old", remove=rollout.old))
    # holding
    serving = [n for group in rollout.new_batches[: rollout.batch + 1] for n in group]
    failure = hold_failure(rollout, serving, seen)
    if failure is not None:
        return rollback(rollout, seen.now, *failure)
    verdict = seen.verdict
    if elapsed < spec.min_healthy_time:
        return None
    held = f"{where(rollout)} held {duration(elapsed)}"
    if verdict is not None:
        held += f": {verdict.reason}"
    if rollout.batch + 1 < len(rollout.batches):
        return _move(rollout, seen.now, rollout.batch + 1, held)
    keeping = replace(rollout, stage="keeping-old", stage_started=seen.now, updated=seen.now)
    reason = f"{where(keeping)} in maint for {duration(spec.keep_old)} after {held}"
    action = Action("keep-old", states=tuple((n, "maint") for n in rollout.old))
    return Step(replace(keeping, reason=reason), "stage", action)


def rollback(rollout: PoolRollout, now: float, cause: Cause, why: str) -> Step:
    """Every old backend ready and every new one drained, in one write; then aborted."""
    ready: tuple[tuple[str, AdminState], ...] = tuple((n, "ready") for n in rollout.old)
    drained: tuple[tuple[str, AdminState], ...] = tuple((n, "drain") for n in rollout.new)
    reason = f"aborted: {why}; rolled back in one write: {names(rollout.old)} ready"
    done = replace(rollout, phase="aborted", cause=cause, reason=reason, updated=now)
    return Step(done, "aborted", Action("rollback", states=ready + drained))


def _move(rollout: PoolRollout, now: float, batch: int, after: str) -> Step:
    """The batch's new backends ready (slow start applies) and its old ones draining, in one
    write: the pool's capacity never dips."""
    old = rollout.batches[batch]
    new = rollout.new_batches[batch]
    moved = replace(
        rollout,
        batch=batch,
        stage="holding",
        stage_started=now,
        replaced=rollout.replaced + old,
        updated=now,
    )
    states: tuple[tuple[str, AdminState], ...] = tuple((n, "ready") for n in new)
    states += tuple((n, "drain") for n in old)
    reason = f"at {where(moved)}: moved, held and judged, after {after}"
    return Step(replace(moved, reason=reason), "stage", Action("move", states=states))
