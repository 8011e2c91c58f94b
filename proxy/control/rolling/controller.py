"""The pool rollout controller: the asynchronous part, which watches, writes and runs hooks.

Theory of operation. One task for the whole instance wakes every TICK while a pool rollout is
progressing or paused, asks every worker for fresh counters, folds each rollout's per-backend
increments into its judge (`observe.Run`, in memory only), builds what the machine needs
(`Seen`: in-flight on the batch, hook results of the stage, backends passing their checks
afresh, the judge's verdict) and asks the pure machine (`plan.advance`) for the next step.

A step is one write through the control plane's write path (`write`): the admin states, added
and removed backends and the rollout's next value together, one revision, acknowledged by every
worker before it counts (so a drain is in force everywhere before in-flight is counted, and a
surge rollback routes to the old backends everywhere when the write returns). A write states
which rollout value it replaces; if that is no longer current the step is dropped (`Stale`).
Hooks named by a step start after its write; each result is kept for the stage it was started
in (a pause does not lose it, an abort cancels the hook, which kills its process group).

A change to the pool that is not the rollout's own (a person draining a backend, a reload that
changed the pool) pauses a progressing rollout, naming who and at which revision; the pool gone
aborts it. After a restart a live rollout resumes at its stage: the stage's admin states are
written again (idempotent) and its hooks run again (a hook must be safe to run twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from proxy.config import BackendConfig
from proxy.control.rolling import observe, plan
from proxy.control.rolling.hooks import Hook, run_hook
from proxy.control.rolling.model import Action, HookAction, HookResult, PoolRollout, Seen, Step
from proxy.control.rolling.observe import Checks, Run
from proxy.control.rolling.status import PoolRolloutState
from proxy.control.rolling.words import where
from proxy.control.rollout import judge
from proxy.control.rollout.model import ACTOR
from proxy.control.rollout.notify import Notifier
from router import Snapshot, Spec
from router.edits import rebuild
from router.spec import AdminState, PoolSpec

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane, Next
    from proxy.fleet.counts import Accumulator

log = logging.getLogger("turnout.rolling")

TICK = 0.25
"""Seconds between looks: in-flight, checks and the judge are seen within a tick or two."""

RAMPED = ("drain", "readmit", "move")
"""Actions whose `ready` backends come back with slow start (a rollback's old backends, warm
and trusted, get their whole weight at once)."""


class Stale(Exception):
    """The rollout changed since the step was decided: the step is dropped."""


class PoolRolloutController:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.runs: dict[str, Run] = {}
        self.notifier = Notifier()
        self.aborts: Counter[tuple[str, str]] = Counter()
        """(pool, cause) -> pool rollouts aborted since the instance started."""
        self._task: asyncio.Task[None] | None = None
        self._hooks: dict[str, set[asyncio.Task[None]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._leading = False
        self._fleet_sums: Accumulator | None = None
        plane.listeners.append(self._changed)

    # Life

    def start(self) -> None:
        # In a fleet this instance leads only once elected: tick() resumes then.
        self._leading = self.plane.leads_rollouts
        if self._leading:
            self._resume_all()
        self._task = asyncio.create_task(self._forever())

    def _resume_all(self) -> None:
        """Take over every live rollout: after a restart, or on becoming the fleet's leader."""
        for rollout in self.plane.pool_rollouts.values():
            if rollout.final:
                continue
            log.info(
                "rollout of pool %s resumed %s at %s (%s): kept its phase, batch, stage and the "
                "stage's clock; its admin states are written again and a hook it was running "
                "runs again; reset the judge's evidence and the hooks' results",
                rollout.pool,
                rollout.phase,
                where(rollout),
                rollout.stage,
            )
            if rollout.phase == "progressing":
                self._spawn(self._resume_stage(rollout))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._background) if t is not None]
        tasks += [t for group in self._hooks.values() for t in group]
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
                log.exception("pool rollout controller: tick failed; trying again")

    # Each tick

    async def tick(self) -> None:
        plane = self.plane
        leading = plane.leads_rollouts
        if leading and not self._leading:
            self._resume_all()
        self._leading = leading
        live = [r for r in plane.pool_rollouts.values() if not r.final]
        if not leading:
            self._fleet_sums = None  # a new leadership counts from its next readings
            return
        if not live:
            return
        reports = await plane.supervisor.query_stats(wait=TICK)
        totals: Mapping[tuple[str, str], Any] = plane.telemetry.backends()
        flights = [(r.revision, r.inflight) for r in reports]
        if plane.fleet is not None:
            # The whole fleet's traffic and in-flight requests (proxy.control.fleet_counts).
            if self._fleet_sums is None:
                self._fleet_sums = plane.fleet.counts.accumulator()
            summed = await plane.fleet.counts.sums(self._fleet_sums, {}, totals, members=True)
            if summed is None:
                return  # etcd away: no new evidence, and no write could land anyway
            totals = summed.backends
            flights += summed.flights
        now = time.time()
        for rollout in live:
            pool = plane.snapshot.spec.pool(rollout.pool)
            run = self._run(rollout)
            if pool is None:
                why = "the pool is gone"
                await self._try(_gone(rollout, now, why), rollout)
                continue
            names = [b.name for b in pool.backends]
            counts = {
                n: (t.attempts, t.attempt_errors)
                for n in names
                if (t := totals.get((rollout.pool, n))) is not None
            }
            observe.fold(run, rollout, counts, names)
            if rollout.phase != "progressing":
                continue
            seen = Seen(
                now=now,
                in_flight=observe.in_flight(
                    flights,
                    rollout.pool,
                    rollout.current,
                    rollout.revision,
                ),
                hooks=tuple(run.stage_hooks),
                healthy=self._healthy(rollout, pool, run),
                verdict=run.verdict,
            )
            step = plan.advance(rollout, seen)
            if step is not None:
                await self._try(step, rollout)

    def _run(self, rollout: PoolRollout) -> Run:
        """The rollout's Run, its stage's part started afresh when the stage changed."""
        run = self.runs.get(rollout.pool)
        if run is None or run.started != rollout.started:
            run = self.runs[rollout.pool] = Run(rollout.started)
        key = observe.stage_key(rollout)
        if run.stage != key:
            run.stage = key
            run.stage_hooks = []
            run.probes_at_stage = {
                state.backend: state.probes_ok + state.probes_failed
                for (pool, _), state in self.plane.health.backends.items()
                if pool == rollout.pool
            }
        return run

    def _healthy(self, rollout: PoolRollout, pool: PoolSpec, run: Run) -> frozenset[str]:
        checker = self.plane.health.backends
        checks: dict[str, Checks] = {}
        for backend in pool.backends:
            state = checker.get((pool.name, backend.name))
            if state is not None and state.checked:
                probes = state.probes_ok + state.probes_failed
                checks[backend.name] = Checks(probes, state.successes, state.routable)
        threshold = self.plane.settings.pool_health(pool.name).healthy_threshold
        fresh = observe.waiting_on_checks(rollout)
        return observe.healthy(checks, fresh, run.probes_at_stage, threshold)

    def state(self, rollout: PoolRollout) -> PoolRolloutState:
        run = self.runs.get(rollout.pool)
        if run is None or run.started != rollout.started:
            run = Run(rollout.started)
        return PoolRolloutState(
            revision=self.plane.snapshot.revision,
            rollout=rollout,
            verdict=run.verdict,
            errors=run.errors,
            new_requests=run.new_requests,
            new_errors=run.new_errors,
            old_requests=run.old_requests,
            old_errors=run.old_errors,
            hooks=tuple(run.hooks),
            threshold=judge.abort_threshold(rollout.spec.judge),
        )

    # Writes

    async def _try(self, step: Step, expected: PoolRollout) -> None:
        """A step the controller decided: written under actor `rollout`, dropped if stale or
        refused (then the next tick decides again)."""
        try:
            await self.write(step, expected, actor=ACTOR)
        except Stale:
            pass
        except Exception as error:
            log.warning("rollout of pool %s: %s refused: %s", expected.pool, step.event, error)

    async def write(
        self,
        step: Step,
        expected: PoolRollout | None,
        *,
        actor: str,
        if_match: Any = None,
    ) -> PoolRollout:
        """Apply a step: its admin states and backends and the rollout's new value, one write;
        then start the hooks it names."""
        plane = self.plane
        pool = step.rollout.pool
        action = step.action

        def edit(current: Snapshot) -> Next:
            from proxy.control.plane import Next

            existing = plane.pool_rollouts.get(pool)
            if existing != expected:
                raise Stale(pool)
            changed = apply_action(current, pool, action)
            if changed.revision == current.revision:
                changed = rebuild(current, current.spec, current.health)
            rollout = replace(step.rollout, revision=changed.revision)
            record = (_summary(existing, current), _summary(rollout, changed))
            everything = {**plane.pool_rollouts, pool: rollout}
            return Next(changed, pool_rollouts=everything, record=record)

        if action.kind in RAMPED:
            self._ramp(pool, action)
        started = time.perf_counter()
        await plane.apply_next(
            edit,
            actor=actor,
            action=f"rollout-{step.event}",
            target=f"pool/{pool}",
            if_match=if_match,
        )
        seconds = time.perf_counter() - started
        rollout = plane.pool_rollouts[pool]
        if step.event == "aborted" and rollout.cause is not None:
            self.aborts[(pool, rollout.cause)] += 1
        log.info(
            "rollout of pool %s: %s (revision %d, acknowledged by every worker in %.1f ms, "
            "written in %.1f ms)",
            pool,
            rollout.reason,
            rollout.revision,
            plane.last_ack_seconds * 1000,
            seconds * 1000,
        )
        self._cancel_hooks_of_other_stages(rollout)
        # The stage begins now, not at the next tick: a hook that finishes before that tick
        # must find its stage current, or its result is never seen and the stage waits for ever.
        self._run(rollout)
        if action.hooks and action.hook is not None:
            self._start_hooks(rollout, action.hooks, action.hook)
        self._notify(step.event, rollout)
        return rollout

    def _ramp(self, pool: str, action: Action) -> None:
        """Backends a step sets ready come back with the pool's slow start, as after an
        ejection: the health checker's readmission times are what routing ramps from."""
        now = time.time()
        for name, state in action.states:
            if state == "ready":
                self.plane.health.readmitted[(pool, name)] = now

    async def _resume_stage(self, rollout: PoolRollout) -> None:
        """After a restart: the stage's admin states again (no revision when they are already
        so), and its hooks again."""
        action = plan.pending(rollout)
        if action.states or action.add or action.remove:
            try:
                await self.plane.apply(
                    lambda current: apply_action(current, rollout.pool, action),
                    actor=ACTOR,
                    action="rollout-resumed",
                    target=f"pool/{rollout.pool}",
                )
            except Exception as error:
                log.warning("rollout of pool %s: resuming refused: %s", rollout.pool, error)
        self._run(rollout)  # as in write: a hook's result needs its stage current
        if action.hooks and action.hook is not None:
            self._start_hooks(rollout, action.hooks, action.hook)

    # Hooks

    def _start_hooks(
        self, rollout: PoolRollout, backends: tuple[str, ...], hook: HookAction
    ) -> None:
        spec = rollout.spec
        command = Hook(spec.hook_command, spec.hook_url, spec.hook_timeout)
        pool = self.plane.snapshot.spec.pool(rollout.pool)
        urls = {b.name: f"http://{b.host}:{b.port}" for b in pool.backends} if pool else {}
        key = observe.stage_key(rollout)
        for name in backends:
            task = asyncio.create_task(
                self._hook(command, hook, rollout.pool, name, urls.get(name, ""), key)
            )
            group = self._hooks.setdefault(rollout.pool, set())
            group.add(task)
            task.add_done_callback(group.discard)
            setattr(task, "stage", key)  # noqa: B010  (read by _cancel_hooks_of_other_stages)

    async def _hook(
        self,
        hook: Hook,
        action: HookAction,
        pool: str,
        backend: str,
        url: str,
        key: tuple[object, ...],
    ) -> None:
        log.info("rollout of pool %s: running the %s hook for %s", pool, action, backend)
        ran = await run_hook(hook, action=action, pool=pool, backend=backend, url=url)
        result = HookResult(backend, action, ran.ok, ran.reason, ran.tail)
        log.log(
            logging.INFO if ran.ok else logging.WARNING,
            "rollout of pool %s: %s hook for %s: %s (%.1f s)",
            pool,
            action,
            backend,
            ran.reason,
            ran.seconds,
        )
        run = self.runs.get(pool)
        if run is None:
            return
        run.hooks.append(result)
        del run.hooks[:-100]
        if run.stage == key:
            run.stage_hooks.append(result)

    def _cancel_hooks_of_other_stages(self, rollout: PoolRollout) -> None:
        """A hook belongs to its stage: when the rollout left it (an abort while replacing),
        the hook is stopped (its process group killed), never left to race the revert."""
        key = observe.stage_key(rollout)
        for task in list(self._hooks.get(rollout.pool, ())):
            if getattr(task, "stage", None) != key or rollout.final:
                task.cancel()

    # Notifications

    def _notify(self, event: str, rollout: PoolRollout) -> None:
        if rollout.spec.webhook is None:
            return
        self.notifier.send(
            rollout.spec.webhook,
            {
                "event": event,
                "pool": rollout.pool,
                "mode": rollout.spec.mode,
                "phase": rollout.phase,
                "stage": rollout.stage,
                "batch": rollout.batch + 1,
                "batches": len(rollout.batches),
                "reason": rollout.reason,
                "cause": rollout.cause,
                "revision": rollout.revision,
                "time": rollout.updated,
            },
        )

    # Someone else changed the pool

    def _changed(self, actor: str, action: str, before: Spec, after: Spec, revision: int) -> None:
        if actor == ACTOR or action.startswith("rollout-"):
            return
        for rollout in self.plane.pool_rollouts.values():
            if rollout.final or before.pool(rollout.pool) == after.pool(rollout.pool):
                continue
            why = f"pool changed by {actor} at revision {revision} ({action})"
            if after.pool(rollout.pool) is None:
                step = _gone(rollout, time.time(), why)
            elif rollout.phase == "progressing":
                step = plan.pause(rollout, time.time(), why)
            else:
                continue
            self._spawn(self._try(step, rollout))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def apply_action(current: Snapshot, pool: str, action: Action) -> Snapshot:
    """`current` with the action's backends added (in maint), admin states set and backends
    removed, in one rebuild. Idempotent: a backend already added is left, one already gone is
    not removed again (a restarted rollout performs its stage's action again)."""
    spec = current.spec.pool(pool)
    if spec is None or not (action.add or action.states or action.remove):
        return current
    backends = list(spec.backends)
    have = {b.name for b in backends}
    for name, url in action.add:
        if name not in have:
            backends.append(BackendConfig(name=name, url=url, admin_state="maint").spec())
    states: dict[str, AdminState] = dict(action.states)
    backends = [
        replace(b, admin_state=states[b.name]) if b.name in states else b
        for b in backends
        if b.name not in action.remove
    ]
    changed = replace(spec, backends=tuple(backends))
    if changed == spec:
        return current
    pools = tuple(changed if p.name == pool else p for p in current.spec.pools)
    health = {k: v for k, v in current.health.items() if k[0] != pool or k[1] not in action.remove}
    return rebuild(current, replace(current.spec, pools=pools), health)


def _gone(rollout: PoolRollout, now: float, why: str) -> Step:
    """Abort a rollout whose pool is gone, touching nothing."""
    reason = f"aborted at {where(rollout)}: {why}"
    done = replace(rollout, phase="aborted", cause="route-changed", reason=reason, updated=now)
    return Step(done, "aborted")


def _summary(rollout: PoolRollout | None, snapshot: Snapshot) -> dict[str, Any]:
    """The history's view of a pool rollout transition: phase, stage, batch, reason and the
    pool's backends' admin states."""
    if rollout is None:
        return {"rollout": None}
    pool = snapshot.spec.pool(rollout.pool)
    return {
        "phase": rollout.phase,
        "stage": rollout.stage,
        "batch": rollout.batch + 1,
        "reason": rollout.reason,
        "backends": {b.name: b.admin_state for b in pool.backends} if pool else {},
    }
