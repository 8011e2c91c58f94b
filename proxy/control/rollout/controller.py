"""The rollout controller: the asynchronous part, which feeds the judge and writes transitions.

Theory of operation. One task for the whole instance wakes every TICK while a rollout is
progressing or paused, asks every worker for fresh counters, folds each rollout's increments
into its judge (`Run`, in memory only), and asks the pure machine what to do. A transition is
one write through the control plane's write path (`write`): the routing change and the
rollout's next value together, one revision, acknowledged by every worker before it counts.

A write states which rollout value it replaces: if that is no longer the current one (a person
aborted while the controller was deciding, pre-checks finished after a pause), the write is
dropped (`Stale`), so a decision made on old information never lands.

Any change to the route that is not the rollout's own (a person setting weights, a switch, a
reload that changed the route) pauses a progressing rollout, naming who and at which revision:
the controller never fights a person over the route. A change that takes the rollout's pools
out of the route (or the route away) aborts it, paused or not (cause route-changed), and leaves
the route as that change made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from proxy.control.rollout import judge, machine
from proxy.control.rollout.counts import PoolCounts, pool_counts
from proxy.control.rollout.judge import Test, Verdict
from proxy.control.rollout.machine import Seen, Transition
from proxy.control.rollout.model import ACTOR, Reference, Rollout
from proxy.control.rollout.notify import Notifier
from proxy.control.rollout.prechecks import run_prechecks
from proxy.control.rollout.status import Evidence
from router import Snapshot, Spec, switch_active, with_weights
from router.edits import rebuild
from router.guards import require_eligible

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane, Next
    from proxy.fleet.counts import Accumulator

log = logging.getLogger("turnout.rollout")

TICK = 0.25
"""Seconds between looks at the counters: a broken canary is caught within a tick or two."""


class Stale(Exception):
    """The rollout changed since the transition was decided: the decision is dropped."""


@dataclass(slots=True)
class Run:
    """One rollout's judge state, in the controller's memory (a restart starts it afresh)."""

    revision: int
    """The rollout's revision this run's step counts belong to."""
    errors: Test = field(default_factory=Test)
    latency: Test = field(default_factory=Test)
    slow_index: int | None = None
    last_new: PoolCounts | None = None
    last_old: PoolCounts | None = None
    step_new: int = 0
    step_old: int = 0
    unavailable_since: float | None = None
    verdict: Verdict = field(
        default_factory=lambda: Verdict("inconclusive", None, "inconclusive: no requests yet")
    )


class RolloutController:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.runs: dict[str, Run] = {}
        self.notifier = Notifier()
        self.aborts: Counter[tuple[str, str]] = Counter()
        """(route, cause) -> rollouts aborted since the instance started."""
        self.last_write_seconds: dict[str, float] = {}
        """Per route: how long the last transition's write took to be acknowledged."""
        self._task: asyncio.Task[None] | None = None
        self._prechecks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._fleet_sums: Accumulator | None = None
        plane.listeners.append(self._changed)

    # Life

    def start(self) -> None:
        for rollout in self.plane.rollouts.values():
            if not rollout.final:
                log.info(
                    "rollout of route %s resumed %s at %s: kept its phase, step, the step's "
                    "elapsed time and the weights; reset the judge's evidence and the step's "
                    "request counts (the workers' counters start again after a restart)",
                    rollout.route,
                    rollout.phase,
                    machine.where(rollout),
                )
        self._task = asyncio.create_task(self._forever())

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._prechecks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.notifier.close()

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rollout controller: tick failed; trying again")

    # The judge's turn

    async def tick(self) -> None:
        plane = self.plane
        live = [r for r in plane.rollouts.values() if not r.final]
        if not plane.leads_rollouts:  # in a fleet, the leader runs them
            self._fleet_sums = None  # a new leadership counts from its next readings
            return
        if not live:
            return
        await plane.supervisor.query_stats(wait=TICK)
        totals: Mapping[tuple[str, str], Any] = plane.telemetry.routes()
        if plane.fleet is not None:
            # The whole fleet's traffic, summed (proxy.control.fleet_counts).
            if self._fleet_sums is None:
                self._fleet_sums = plane.fleet.counts.accumulator()
            summed = await plane.fleet.counts.sums(self._fleet_sums, totals, {})
            if summed is None:
                return  # etcd away: no new evidence, and no write could land anyway
            totals = summed.routes
        now = time.time()
        for rollout in live:
            run = self._fold(rollout, totals, now)
            if rollout.phase != "progressing":
                continue
            if not _has_pools(plane.snapshot.spec, rollout):
                await self._try(_gone(rollout, now, "the route or its pools are gone"), rollout)
                continue
            if rollout.spec.strategy == "blue-green" and rollout.step == 0:
                self._start_prechecks(rollout)
                continue
            unavailable = 0.0 if run.unavailable_since is None else now - run.unavailable_since
            transition = machine.advance(rollout, Seen(now, run.verdict, unavailable))
            if transition is not None:
                await self._try(transition, rollout)

    def _fold(self, rollout: Rollout, totals: Mapping[tuple[str, str], Any], now: float) -> Run:
        """Fold the increments since the last report into the rollout's judge."""
        run = self.runs.get(rollout.route)
        if run is None:
            run = self.runs[rollout.route] = Run(rollout.revision)
        elif run.revision != rollout.revision:
            run.revision = rollout.revision  # a transition: the step's counts start again
            run.step_new = run.step_old = 0
        new = pool_counts(totals.get((rollout.route, rollout.new)))
        old = pool_counts(totals.get((rollout.route, rollout.baseline)))
        d_new = new.minus(run.last_new) if run.last_new is not None else None
        d_old = old.minus(run.last_old) if run.last_old is not None else None
        run.last_new, run.last_old = new, old
        pool = self.plane.snapshot.pools.get(rollout.new)
        if pool is not None and pool.eligible:
            run.unavailable_since = None
        elif run.unavailable_since is None:
            run.unavailable_since = now
        judge_settings = rollout.spec.judge
        bounds = tuple(self.plane.settings.metrics.buckets)
        if rollout.spec.strategy == "canary":
            if run.slow_index is None and old.buckets:
                run.slow_index = judge.slow_bound(
                    bounds, old.buckets, judge_settings.latency_quantile
                )
                if run.slow_index is not None:
                    d_new = d_old = None  # count slow responses only from calibration on
            if d_new is not None and d_old is not None:
                run.step_new += d_new.requests
                run.step_old += d_old.requests
                run.errors = judge.observe(
                    run.errors,
                    judge_settings.tolerance,
                    d_new.requests,
                    d_new.errors,
                    d_old.requests,
                    d_old.errors,
                )
                if run.slow_index is not None and d_new.buckets and d_old.buckets:
                    run.latency = judge.observe(
                        run.latency,
                        judge_settings.latency_tolerance,
                        d_new.requests,
                        judge.slow_count(d_new.buckets, run.slow_index),
                        d_old.requests,
                        judge.slow_count(d_old.buckets, run.slow_index),
                        warmup=judge.LATENCY_WARMUP,
                    )
        elif rollout.step == 1 and rollout.reference is not None and d_new is not None:
            reference = rollout.reference
            if run.slow_index is None and reference.buckets:
                run.slow_index = judge.slow_bound(
                    bounds, reference.buckets, judge_settings.latency_quantile
                )
            alpha = judge_settings.alpha
            run.step_new += d_new.requests
            run.errors = judge.observe_reference(
                run.errors,
                judge_settings.tolerance,
                judge.reference_rate(reference.requests, reference.errors, alpha),
                d_new.requests,
                d_new.errors,
            )
            if run.slow_index is not None and d_new.buckets:
                slow = judge.slow_count(reference.buckets, run.slow_index)
                run.latency = judge.observe_reference(
                    run.latency,
                    judge_settings.latency_tolerance,
                    judge.reference_rate(reference.requests, slow, alpha),
                    d_new.requests,
                    judge.slow_count(d_new.buckets, run.slow_index),
                    warmup=judge.LATENCY_WARMUP,
                )
        run.verdict = judge.verdict(run.errors, run.latency, run.step_new, judge_settings)
        return run

    def evidence(self, route: str) -> tuple[Evidence, Verdict]:
        run = self.runs.get(route) or Run(0)
        slow_above = None
        bounds = self.plane.settings.metrics.buckets
        if run.slow_index is not None and run.slow_index < len(bounds):
            slow_above = bounds[run.slow_index]
        evidence = Evidence(run.errors, run.latency, slow_above, run.step_new, run.step_old)
        return evidence, run.verdict

    # Blue-green pre-checks

    def _start_prechecks(self, rollout: Rollout) -> None:
        if rollout.route in self._prechecks:
            return
        task = asyncio.create_task(self._run_prechecks(rollout))
        self._prechecks[rollout.route] = task
        task.add_done_callback(lambda _: self._prechecks.pop(rollout.route, None))

    async def _run_prechecks(self, rollout: Rollout) -> None:
        pool = self.plane.snapshot.pools.get(rollout.new)
        backends = [(b.name, b.host, b.port) for b in pool.backends] if pool else []
        failure = None
        if rollout.spec.prechecks:
            failure = await run_prechecks(rollout.spec.prechecks, rollout.new, backends)
        if failure is None and (pool is None or not pool.eligible):
            failure = f"{rollout.new} has no eligible backend to switch to"
        total = self.plane.telemetry.routes().get((rollout.route, rollout.baseline))
        counts = pool_counts(total)
        reference = Reference(counts.requests, counts.errors, counts.buckets)
        transition = machine.after_prechecks(rollout, time.time(), failure, reference)
        await self._try(transition, rollout)

    # Writes

    async def _try(self, transition: Transition, expected: Rollout) -> None:
        """A transition the controller decided: written under actor `rollout`, dropped if stale
        or refused (then the next tick decides again)."""
        try:
            await self.write(transition, expected, actor=ACTOR)
        except Stale:
            pass
        except Exception as error:  # a rule refused it (no eligible backend): decide again
            log.warning(
                "rollout of route %s: %s refused: %s", expected.route, transition.event, error
            )

    async def write(
        self,
        transition: Transition,
        expected: Rollout | None,
        *,
        actor: str,
        if_match: Any = None,
    ) -> Rollout:
        """Apply a transition: the routing change and the rollout's new value in one write."""
        plane = self.plane
        route = transition.rollout.route
        forward = transition.event not in ("aborted", "paused")

        def step(current: Snapshot) -> Next:
            from proxy.control.plane import Next

            existing = plane.rollouts.get(route)
            if existing != expected:
                raise Stale(route)
            changed = current
            spec = current.spec.route(route)
            if transition.weights is not None and spec is not None:
                weights = {name: 0 for name, _ in spec.weights} | transition.weights
                changed = with_weights(changed, route, weights)
            to = transition.switch_to
            if to is not None and spec is not None and spec.active != to:
                changed = switch_active(changed, route, to)
            if forward:
                require_eligible(current, changed)
            if changed.revision == current.revision:
                changed = rebuild(current, current.spec, current.health)
            rollout = replace(transition.rollout, revision=changed.revision)
            record = (_summary(existing, current), _summary(rollout, changed))
            return Next(changed, rollouts={**plane.rollouts, route: rollout}, record=record)

        started = time.perf_counter()
        await plane.apply_next(
            step,
            actor=actor,
            action=f"rollout-{transition.event}",
            target=f"route/{route}",
            if_match=if_match,
        )
        seconds = time.perf_counter() - started
        self.last_write_seconds[route] = seconds
        rollout = plane.rollouts[route]
        if transition.event == "aborted" and rollout.cause is not None:
            self.aborts[(route, rollout.cause)] += 1
        # Acknowledged: traffic moved in every worker. Written: that, plus the lock, the step,
        # the history and the state file's fsync (which a loaded disk may stretch).
        log.info(
            "rollout of route %s: %s (revision %d, acknowledged by every worker in %.1f ms, "
            "written in %.1f ms)",
            route,
            rollout.reason,
            rollout.revision,
            plane.last_ack_seconds * 1000,
            seconds * 1000,
        )
        self._notify(transition.event, rollout)
        return rollout

    def _notify(self, event: str, rollout: Rollout) -> None:
        if rollout.spec.webhook is None:
            return
        self.notifier.send(
            rollout.spec.webhook,
            {
                "event": event,
                "route": rollout.route,
                "strategy": rollout.spec.strategy,
                "phase": rollout.phase,
                "step": rollout.step,
                "weight": rollout.weight,
                "baseline": rollout.baseline,
                "candidate": rollout.new,
                "reason": rollout.reason,
                "cause": rollout.cause,
                "revision": rollout.revision,
                "time": rollout.updated,
            },
        )

    # Someone else changed the route

    def _changed(self, actor: str, action: str, before: Spec, after: Spec, revision: int) -> None:
        if actor == ACTOR or action.startswith("rollout-"):
            return
        for rollout in self.plane.rollouts.values():
            if rollout.final:
                continue
            if before.route(rollout.route) == after.route(rollout.route):
                continue
            why = f"route changed by {actor} at revision {revision} ({action})"
            if not _has_pools(after, rollout):
                # Nothing left to judge or resume (paused or not): the rollout ends, and the
                # route stays as the change left it.
                transition = _gone(rollout, time.time(), f"{why}: the route or its pools are gone")
            elif rollout.phase == "progressing":
                transition = machine.pause(rollout, time.time(), why)
            else:
                continue
            task = asyncio.ensure_future(self._try(transition, rollout))
            self._background.add(task)
            task.add_done_callback(self._background.discard)


def _gone(rollout: Rollout, now: float, why: str) -> Transition:
    """Abort a rollout whose route or pools are gone, without the abort's routing change:
    setting weights on pools the route no longer has would put a removed pool back (or be
    refused, forever, for a pool that no longer exists), undoing the change that removed it."""
    return replace(machine.abort(rollout, now, "route-changed", why), weights=None, switch_to=None)


def _has_pools(spec: Spec, rollout: Rollout) -> bool:
    route = spec.route(rollout.route)
    if route is None:
        return False
    names = [n for n, _ in route.weights] if route.mode == "weighted" else list(route.colours)
    return rollout.baseline in names and rollout.new in names


def _summary(rollout: Rollout | None, snapshot: Snapshot) -> dict[str, Any]:
    """The history's view of a rollout transition: phase, step, reason and the route's split."""
    if rollout is None:
        return {"rollout": None}
    route = snapshot.spec.route(rollout.route)
    summary: dict[str, Any] = {
        "phase": rollout.phase,
        "step": rollout.step,
        "reason": rollout.reason,
    }
    if route is not None and route.mode == "weighted":
        summary["weights"] = dict(route.weights)
    elif route is not None:
        summary["active"] = route.active
    return summary
