"""What the pool rollout controller folds and derives at each tick (pure, synchronous).

Theory of operation. The machine (`plan.py`) needs a `Seen`; this module builds its parts from
plain values the controller gathered, so each rule is testable without a running instance:

- `sides`: which of the pool's backends run the new version and are in service (in place: the
  replaced ones; surge: the new backends already moved) and which run the old one and are in
  service (not yet replaced, not in the batch at work). The judge compares the two.
- `fold`: one tick's increments of per-backend attempt counters, summed per side, into the
  error test (proxy.control.rollout.judge: the same anytime-valid test as the route rollouts,
  with the old backends as the free, concurrent baseline). Only errors are judged: the workers
  keep latency histograms per pool, not per backend.
- `healthy`: a backend counts as healthy for a stage that waits on its checks only after
  `healthy_threshold` probes in a row passed *since the stage began* (after the hook finished,
  or after it was added): a probe from before the restart proves nothing. Elsewhere healthy
  means what routing means by it (healthy by probe, not ejected).
- `in_flight`: requests in flight on the batch, from workers' reports made at or after the
  revision that drained it; a report from before that revision may miss a request routed just
  before the drain, so it counts as "not drained yet".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import proxy.control.rollout.judge as judge
from proxy.control.rolling.model import HookResult, PoolRollout
from proxy.control.rollout.judge import Test, Verdict

Counts = tuple[int, int]
"""A backend's (attempts, attempt errors) since its workers started."""


@dataclass(slots=True)
class Run:
    """One pool rollout's live state in the controller's memory (a restart starts it afresh)."""

    started: float
    """The rollout's `started`: a new rollout of the pool gets a new Run."""
    errors: Test = field(default_factory=Test)
    last: dict[str, Counts] = field(default_factory=dict)
    new_requests: int = 0
    new_errors: int = 0
    old_requests: int = 0
    old_errors: int = 0
    verdict: Verdict | None = None
    hooks: list[HookResult] = field(default_factory=list)
    """Every hook result of this rollout, oldest first."""
    stage: tuple[object, ...] = ()
    """The stage the fields below belong to (`stage_key`)."""
    stage_hooks: list[HookResult] = field(default_factory=list)
    probes_at_stage: dict[str, int] = field(default_factory=dict)
    """Backend -> probes it had had when the stage began."""


def stage_key(rollout: PoolRollout) -> tuple[object, ...]:
    """What identifies a stage within a rollout. Not its start time: a pause and resume restart
    the stage's clock, but a hook started before the pause still belongs to it."""
    return (rollout.started, rollout.batch, rollout.stage, rollout.reverting)


def sides(rollout: PoolRollout, pool_backends: Iterable[str]) -> tuple[list[str], list[str]]:
    """(new version in service, old version in service) among the pool's backends."""
    names = list(pool_backends)
    if rollout.spec.mode == "surge":
        moved = {n for group in rollout.new_batches[: rollout.batch + 1] for n in group}
        waiting = {n for group in rollout.batches[rollout.batch + 1 :] for n in group}
        if rollout.stage == "gating":
            return [], [n for n in names if n in rollout.old]
        return [n for n in names if n in moved], [n for n in names if n in waiting]
    out = set(rollout.reverting) | (set() if rollout.stage == "holding" else set(rollout.current))
    new = [n for n in names if n in rollout.replaced and n not in out]
    old = [n for n in names if n not in rollout.replaced and n not in out]
    return new, old


def fold(
    run: Run,
    rollout: PoolRollout,
    counts: Mapping[str, Counts],
    pool_backends: Iterable[str],
) -> None:
    """Fold the increments since the last tick into the error test, then set the verdict (None
    when one side has no backend in service: nothing to compare with)."""
    new, old = sides(rollout, pool_backends)
    delta: dict[str, Counts] = {}
    for name, now in counts.items():
        before = run.last.get(name)
        if before is not None:
            delta[name] = (now[0] - before[0], now[1] - before[1])
    run.last = dict(counts)
    if not new or not old:
        run.verdict = None
        return
    nr = sum(delta.get(n, (0, 0))[0] for n in new)
    ne = sum(delta.get(n, (0, 0))[1] for n in new)
    orq = sum(delta.get(n, (0, 0))[0] for n in old)
    oe = sum(delta.get(n, (0, 0))[1] for n in old)
    settings = rollout.spec.judge
    run.errors = judge.observe(run.errors, settings.tolerance, nr, ne, orq, oe)
    run.new_requests += max(nr, 0)
    run.new_errors += max(ne, 0)
    run.old_requests += max(orq, 0)
    run.old_errors += max(oe, 0)
    names = ("new", "old") if rollout.spec.mode == "surge" else ("replaced", "not replaced")
    run.verdict = judge.verdict(run.errors, Test(), run.new_requests, settings, names)


def waiting_on_checks(rollout: PoolRollout) -> tuple[str, ...]:
    """The backends the current stage waits to see pass their checks afresh."""
    if rollout.stage == "waiting-healthy":
        return rollout.current
    if rollout.stage == "revert-waiting-healthy":
        return rollout.reverting[:1]
    if rollout.stage == "gating":
        return rollout.new
    return ()


@dataclass(frozen=True, slots=True)
class Checks:
    """One backend's active checks, as the health checker counts them."""

    probes: int
    """Probes so far (passed and failed)."""
    passed_in_a_row: int
    routable: bool
    """Healthy by probe and not ejected."""


def healthy(
    checks: Mapping[str, Checks],
    fresh: Iterable[str],
    probes_at_stage: Mapping[str, int],
    threshold: int,
) -> frozenset[str]:
    """The backends healthy for the machine: those in `fresh` need `threshold` passing probes
    in a row, all since the stage began; the others need only be routable."""
    strict = set(fresh)
    out: set[str] = set()
    for name, check in checks.items():
        if not check.routable:
            continue
        if name in strict:
            since = check.probes - probes_at_stage.get(name, check.probes)
            if min(since, check.passed_in_a_row) < threshold:
                continue
        out.add(name)
    return frozenset(out)


def in_flight(
    reports: Iterable[tuple[int, Mapping[tuple[str, str], int]]],
    pool: str,
    backends: Iterable[str],
    since_revision: int,
) -> int:
    """Requests in flight on `backends`, from (revision, in-flight) worker reports; at least 1
    while any report predates `since_revision` (it may miss a request routed before it)."""
    names = tuple(backends)
    total = 0
    stale = False
    for revision, counts in reports:
        stale = stale or revision < since_revision
        total += sum(counts.get((pool, name), 0) for name in names)
    return max(total, 1) if stale else total
