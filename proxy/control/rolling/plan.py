"""The pool rollout's machine: what to do next, as a pure function of what the controller saw.

Theory of operation. The controller keeps one `PoolRollout` per pool and, at every tick of a
progressing one, calls `advance` with what it saw (`Seen`). `advance` returns None (wait) or a
`Step`: the rollout's next value, the event to announce, and the `Action` the controller
performs in the same write that records the step (admin states, backends added or removed),
then starts any hooks it names and reports their results in a later `Seen`. Each stage waits on
one fact and has one deadline; the stages of each mode are in `inplace.py` and `surge.py`.

People's commands (`pause`, `resume`, `abort`) are functions here too, so every transition,
whoever causes it, is built in one place with its reason. A pause freezes the rollout where it
stands (a drained batch stays drained, a running hook finishes and its result waits for the
resume); a resume starts the stage's clock again. An abort by a person is a failure with cause
`manual`: in place it reverts (with `auto_revert`), surge rolls back in one write; an abort
while reverting stops the revert where it stands. `pending` says what a restarted controller
performs again for the stage it finds.
"""

from __future__ import annotations

from dataclasses import replace

from proxy.control.rolling import inplace, surge
from proxy.control.rolling.model import NONE, Action, PoolRollout, RollSpec, Seen, Step
from proxy.control.rolling.words import where
from router.spec import AdminState


def batches(names: tuple[str, ...], batch: int) -> tuple[tuple[str, ...], ...]:
    """The backends in groups of `batch`, in order; the last group may be smaller."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    return tuple(names[i : i + batch] for i in range(0, len(names), batch))


def spread(names: tuple[str, ...], groups: int) -> tuple[tuple[str, ...], ...]:
    """`names` in `groups` consecutive groups as equal as can be, the larger ones first: the
    new backends that take each surge batch's traffic."""
    size, extra = divmod(len(names), groups)
    out: list[tuple[str, ...]] = []
    at = 0
    for i in range(groups):
        n = size + (1 if i < extra else 0)
        out.append(names[at : at + n])
        at += n
    return tuple(out)


def start(pool: str, spec: RollSpec, backends: tuple[str, ...], now: float) -> Step:
    """The first step: in place drains the first batch; surge adds the new backends in maint.

    `backends` are the pool's backends when the rollout starts, in the order to replace them.
    """
    if not backends:
        raise ValueError(f"pool {pool} has no backends to roll")
    groups = batches(backends, spec.batch)
    new_groups: tuple[tuple[str, ...], ...] = ()
    if spec.mode == "surge":
        if not spec.new_backends:
            raise ValueError("new_backends: surge needs at least one new backend")
        clash = sorted(set(backends) & {name for name, _ in spec.new_backends})
        if clash:
            raise ValueError(f"new_backends: {', '.join(clash)} already in pool {pool}")
        new_groups = spread(tuple(name for name, _ in spec.new_backends), len(groups))
    elif bool(spec.hook_command) == (spec.hook_url is not None):
        raise ValueError("hook_command, hook_url: in place needs exactly one hook")
    rollout = PoolRollout(
        pool=pool,
        spec=spec,
        phase="progressing",
        reason="",
        batches=groups,
        batch=0,
        stage="gating" if spec.mode == "surge" else "draining",
        stage_started=now,
        started=now,
        updated=now,
        revision=0,
        new_batches=new_groups,
    )
    return surge.start(rollout) if spec.mode == "surge" else inplace.start(rollout)


def advance(rollout: PoolRollout, seen: Seen) -> Step | None:
    """The tick's turn: wait (None), the next stage or batch, promote, revert or abort."""
    if rollout.phase != "progressing":
        return None
    if rollout.spec.mode == "surge":
        return surge.advance(rollout, seen)
    return inplace.advance(rollout, seen)


def pause(rollout: PoolRollout, now: float, actor: str) -> Step:
    reason = f"paused by {actor} at {where(rollout)}"
    return Step(replace(rollout, phase="paused", reason=reason, updated=now), "paused")


def resume(rollout: PoolRollout, now: float, actor: str) -> Step:
    """Back to progressing; the stage's clock (and so its deadline) starts again."""
    reason = f"resumed by {actor} at {where(rollout)}"
    resumed = replace(rollout, phase="progressing", reason=reason, stage_started=now, updated=now)
    return Step(resumed, "resumed")


def abort(rollout: PoolRollout, now: float, actor: str) -> Step:
    why = f"aborted by {actor} at {where(rollout)}"
    if rollout.spec.mode == "surge":
        return surge.rollback(rollout, now, "manual", why)
    if rollout.reverting:
        return inplace.stop_revert(rollout, now, why)
    return inplace.fail(rollout, now, "manual", why)


def pending(rollout: PoolRollout) -> Action:
    """What to perform again after a restart, for the current stage to be what it says: the
    admin states it set (idempotent), or its hooks (a restart killed them; a hook must be safe
    to run twice, as Kamal's and CodeDeploy's are). None for a final rollout."""
    if rollout.final:
        return NONE
    current = rollout.current
    if rollout.spec.mode == "surge":
        if rollout.stage == "gating":
            return Action("add-backends", add=rollout.spec.new_backends)
        if rollout.stage == "keeping-old":
            return Action("keep-old", states=tuple((n, "maint") for n in rollout.old))
        upto = rollout.batch + 1
        new = [n for group in rollout.new_batches[:upto] for n in group]
        old = [n for group in rollout.batches[:upto] for n in group]
        states: tuple[tuple[str, AdminState], ...] = tuple((n, "ready") for n in new)
        return Action("move", states=states + tuple((n, "drain") for n in old))
    if rollout.stage in ("draining", "revert-draining"):
        return inplace.drain(current)
    if rollout.stage in ("replacing", "reverting"):
        return inplace.run_hook(current, "revert" if rollout.reverting else "replace")
    if rollout.stage == "holding":
        return inplace.readmit(current)
    return NONE
