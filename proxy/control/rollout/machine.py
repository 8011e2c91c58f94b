"""The rollout's state machine: what to do next, as a pure function of what the controller saw.

Theory of operation. `advance` is called for a progressing rollout after every report the
judge folded in; it returns None (hold) or a `Transition`: the rollout's next value, the event
to announce, and the routing change that goes with it (canary weights or the blue-green colour),
which the control plane applies in the same write. The rules, in order of precedence:

1. The new version with no eligible backend for `no_eligible_timeout`: abort.
2. The judge says worse: abort. The evidence is checked at every report, whatever the step's
   time: a broken canary is aborted at once, not at the end of an interval.
3. Canary: the step has lasted `step_time` *and* the judge says not worse (at least
   `min_requests` canary requests in the step and no evidence against it): the next step, or
   promote after the last one. A step at 100 % has no concurrent baseline to judge against: it
   only lasts its time.
   Blue-green: the new colour has been watched for `watch` and the judge says not worse: promoted.
4. Still inconclusive (too little traffic) after `max_step_time`: pause for a person, or abort,
   as configured. No data is never failure by itself.

People's commands (`pause`, `resume`, `promote`, `abort`) and the things that are not the
judge's (a manual change to the route, a route changed by a reload) have functions of their own
here, so that every transition, whoever causes it, is built in one place with its reason.
Abort sends everyone back at once: the canary's weight to 0 (sticky users only ever moved into
the canary, so they all return), or the blue-green switch back to the old colour.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from proxy.control.rollout.judge import Verdict
from proxy.control.rollout.model import AbortCause, Reference, Rollout

Event = Literal["started", "step", "switched", "paused", "resumed", "promoted", "aborted"]


@dataclass(frozen=True, slots=True)
class Transition:
    rollout: Rollout
    """The rollout after the transition (its revision is filled in by the write)."""
    event: Event
    weights: dict[str, int] | None = None
    """Canary: the route's weights from now on."""
    switch_to: str | None = None
    """Blue-green: the colour to make active."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What the controller saw at one report."""

    now: float
    verdict: Verdict
    unavailable_for: float
    """Seconds the new version has had no eligible backend (0 when it has one now)."""


def where(rollout: Rollout) -> str:
    """ "step 2/4 (25 %)" or "pre-checks" / "watching green", for reasons."""
    if rollout.spec.strategy == "canary":
        return f"step {rollout.step + 1}/{len(rollout.spec.steps)} ({rollout.weight} %)"
    return "pre-checks" if rollout.step == 0 else f"watching {rollout.new}"


def canary_weights(rollout: Rollout, percent: int) -> dict[str, int]:
    return {rollout.baseline: 100 - percent, rollout.new: percent}


def start(rollout: Rollout) -> Transition:
    """The first transition: a canary takes its first step; blue-green begins its pre-checks
    (no routing change yet)."""
    if rollout.spec.strategy == "canary":
        first = rollout.spec.steps[0]
        reason = f"started: {where(rollout)}, judged against {rollout.baseline}"
        return Transition(
            replace(rollout, reason=reason), "started", weights=canary_weights(rollout, first)
        )
    reason = f"started: pre-checks on {rollout.new} before switching from {rollout.baseline}"
    return Transition(replace(rollout, reason=reason), "started")


def advance(rollout: Rollout, seen: Seen) -> Transition | None:
    """The judge's turn: hold (None), step, promote, pause or abort."""
    if rollout.phase != "progressing":
        return None
    spec = rollout.spec
    if rollout.spec.strategy == "blue-green" and rollout.step == 0:
        return None  # the pre-checks decide (after_prechecks)
    if seen.unavailable_for >= spec.no_eligible_timeout:
        return abort(
            rollout,
            seen.now,
            "no-eligible",
            f"{rollout.new} has had no eligible backend for {seen.unavailable_for:.0f} s",
        )
    verdict = seen.verdict
    if verdict.outcome == "worse":
        cause: AbortCause = "latency" if verdict.test == "latency" else "errors"
        return abort(rollout, seen.now, cause, verdict.reason)
    elapsed = seen.now - rollout.step_started
    if spec.strategy == "canary":
        hold = spec.step_time
        judged = rollout.weight != 100
    else:
        hold = spec.watch
        judged = True
    if elapsed >= hold and (not judged or verdict.outcome == "not-worse"):
        return next_step(rollout, seen.now, verdict.reason if judged else "")
    if elapsed >= max(hold, spec.max_step_time) and verdict.outcome == "inconclusive":
        why = f"inconclusive after {_duration(elapsed)}: {verdict.reason}"
        if spec.on_inconclusive == "abort":
            return abort(rollout, seen.now, "inconclusive", why)
        return pause(rollout, seen.now, f"waiting for a person: {why}")
    return None


def next_step(rollout: Rollout, now: float, why: str) -> Transition:
    spec = rollout.spec
    suffix = f": {why}" if why else ""
    if spec.strategy == "canary" and rollout.step + 1 < len(spec.steps):
        moved = replace(rollout, step=rollout.step + 1, step_started=now, updated=now)
        reason = f"at {where(moved)} after {where(rollout)}{suffix}"
        return Transition(
            replace(moved, reason=reason),
            "step",
            weights=canary_weights(moved, spec.steps[moved.step]),
        )
    return promote(rollout, now, f"promoted after {where(rollout)}{suffix}")


def after_prechecks(
    rollout: Rollout, now: float, failure: str | None, reference: Reference
) -> Transition:
    """Blue-green: the pre-checks ran; switch (and start watching) or abort."""
    if failure is not None:
        return abort(rollout, now, "precheck", failure)
    moved = replace(
        rollout,
        step=1,
        step_started=now,
        updated=now,
        reference=reference,
        reason=f"switched to {rollout.new}; watching it against {rollout.baseline}'s figures "
        f"from before the switch",
    )
    return Transition(moved, "switched", switch_to=rollout.new)


def pause(rollout: Rollout, now: float, reason: str) -> Transition:
    return Transition(
        replace(
            rollout, phase="paused", reason=f"paused at {where(rollout)}: {reason}", updated=now
        ),
        "paused",
    )


def resume(rollout: Rollout, now: float, actor: str) -> Transition:
    """Back to progressing; the step's clock starts again (as the judge's step count does)."""
    reason = f"resumed by {actor} at {where(rollout)}"
    return Transition(
        replace(rollout, phase="progressing", reason=reason, step_started=now, updated=now),
        "resumed",
    )


def promote(rollout: Rollout, now: float, reason: str) -> Transition:
    """The new version gets everything, and the rollout is done."""
    done = replace(rollout, phase="promoted", reason=reason, updated=now)
    if rollout.spec.strategy == "canary":
        return Transition(done, "promoted", weights=canary_weights(rollout, 100))
    if rollout.step == 0:
        return Transition(done, "promoted", switch_to=rollout.new)
    return Transition(done, "promoted")


def abort(rollout: Rollout, now: float, cause: AbortCause, why: str) -> Transition:
    """Everyone back to the old version in one write, and the rollout stays aborted."""
    done = replace(
        rollout,
        phase="aborted",
        cause=cause,
        reason=f"aborted at {where(rollout)}: {why}",
        updated=now,
    )
    if rollout.spec.strategy == "canary":
        return Transition(done, "aborted", weights=canary_weights(rollout, 0))
    if rollout.step == 0:
        return Transition(done, "aborted")  # never switched: nothing to move back
    return Transition(done, "aborted", switch_to=rollout.baseline)


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
