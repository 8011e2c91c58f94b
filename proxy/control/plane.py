"""The control plane: the one owner of an instance's routing state, and its one write path.

Theory of operation. There is exactly one current `Snapshot`, held here. Every change (the
service's commands, a reload, the health checker) goes through `_commit`, which holds a lock
and, in order: checks the caller's precondition (If-Match: the revision it read), computes the
new state with a pure step (a router edit, which validates and enforces the rules; for a reload,
the file read beforehand combined with the runtime state), publishes it to every worker and
waits until each has applied it, records who changed what in the history, saves the state, and
only then makes it current and returns. Writers never race each other (the lock), never lose an
update (the precondition), and a caller that got an answer knows every worker routes by it. A
change that changes nothing (the same spec, health, readmissions and settings) is no change: no
publish, no record, no new revision, so repeating a write never makes another client's If-Match
stale.

Lifecycle: `starting` (workers coming up), `serving`, `draining` (SIGTERM: /ready is 503, workers
finish in-flight requests, then the process exits 0). SIGHUP or POST /v1/reload re-reads the
configuration file; an invalid file is rejected with its errors and the running state is kept.
What survives a reload or a restart is decided by `router.carry_runtime`.

Callers outside proxy/ use `proxy.control.service.ControlService`, not this class's parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from proxy.config import Settings, load_config
from proxy.control.errors import StateUnavailable
from proxy.control.health_view import HealthFollower
from proxy.control.history import route_at, spec_diff
from proxy.control.rolling.controller import PoolRolloutController
from proxy.control.rolling.model import PoolRollout
from proxy.control.rollout.controller import RolloutController
from proxy.control.rollout.model import Rollout
from proxy.control.steps import RESTART_ONLY, Listener, Next, Step, reload_step, same_state
from proxy.health import HealthChecker
from proxy.state import (
    HISTORY_LIMIT,
    Change,
    CorruptState,
    SavedState,
    StateFile,
    default_state_path,
)
from proxy.supervisor import Supervisor
from proxy.telemetry import Telemetry
from router import (
    Health,
    RouteSpec,
    Snapshot,
    Spec,
    SpecError,
    build_snapshot,
    carry_runtime,
    with_health_view,
)
from router.preconditions import PreconditionFailed, require_revision

if TYPE_CHECKING:
    from proxy.control.fleet_sync import FleetSync
    from proxy.fleet.layout import SharedState

log = logging.getLogger("turnout.control")
events = logging.getLogger("turnout.events")
"""One JSON line per change (admin, reload, health), apart from the access log."""

Phase = Literal["starting", "serving", "draining"]


__all__ = ["RESTART_ONLY", "ControlPlane", "Next", "Phase", "PreconditionFailed"]


COMMIT_ATTEMPTS = 8
"""Fleet mode: how often a write recomputes its step after another instance wrote first."""


class ControlPlane:
    def __init__(
        self, config_path: Path, settings: Settings, snapshot: Snapshot, log_level: str = "info"
    ) -> None:
        self.config_path = config_path
        self.settings = settings
        self.phase: Phase = "starting"
        self.reloads = 0
        self._lock = asyncio.Lock()
        self.telemetry = Telemetry()
        self.supervisor = Supervisor(
            settings, self._current, self.telemetry, log_level, on_outlier=self._outlier
        )
        self.health = HealthChecker(self._publish_health)
        self._follower = HealthFollower(self.health)
        self._tasks: set[asyncio.Task[None]] = set()
        state = settings.state
        # Imported here: the fleet's modules import the rollouts' models, whose package
        # imports this one (and file mode never needs them).
        from proxy.control.fleet_sync import fleet_sync

        self.fleet: FleetSync | None = fleet_sync(self, settings, config_path)
        """Fleet mode (`[state] backend = "etcd"`): the state lives in etcd; None: in the file."""
        persist = state.persist and self.fleet is None
        path = (state.file or default_state_path(config_path)) if persist else None
        self.state_file = StateFile(path)
        self.history: list[Change] = []
        self.rollouts: Mapping[str, Rollout] = {}
        """Every route's rollout (running or finished), changed only through _commit."""
        self.pool_rollouts: Mapping[str, PoolRollout] = {}
        """Every pool's rollout (running or finished), changed only through _commit."""
        self.listeners: list[Listener] = []
        self.last_ack_seconds = 0.0
        """How long the last change took from its publish to every worker's acknowledgement."""
        self.file_spec = snapshot.spec
        self.snapshot = self._with_health(self._restore(snapshot), settings)
        self._sampler: asyncio.Task[None] | None = None
        self.rollout = RolloutController(self)
        self.rolling = PoolRolloutController(self)

    def _current(self) -> tuple[Snapshot, Settings]:
        return self.snapshot, self.settings

    # Start and restore

    def _restore(self, file_snapshot: Snapshot) -> Snapshot:
        """Combine the saved runtime state (if any) with the configuration file."""
        if self.fleet is not None:
            return self.fleet.restore_copy(file_snapshot)
        try:
            saved = self.state_file.load()
        except CorruptState as error:
            log.error("%s; starting from the configuration file", error)
            self._record(
                1, "config-file", "state-file-corrupt", "state", None, {"keptAs": str(error.aside)}
            )
            return file_snapshot
        if saved is None:
            self._record(1, "config-file", "start", "config", None, None)
            return file_snapshot
        self.history = list(saved.history)
        self.rollouts = {rollout.route: rollout for rollout in saved.rollouts}
        self.pool_rollouts = {rollout.pool: rollout for rollout in saved.pool_rollouts}
        spec = carry_runtime(saved.file_spec, file_snapshot.spec, saved.spec)
        if spec == saved.spec:
            revision = saved.revision
        else:
            revision = saved.revision + 1
            self._record_diff(revision, "config-file", "start", saved.spec, spec)
        try:
            snapshot = build_snapshot(spec, {}, revision)
        except SpecError as error:
            log.error(
                "saved runtime state does not fit the configuration file (%s); using the file",
                error,
            )
            snapshot = build_snapshot(file_snapshot.spec, {}, saved.revision + 1)
            self._record(snapshot.revision, "config-file", "start", "config", None, None)
        log.info(
            "restored runtime state from %s (revision %d)", self.state_file.path, snapshot.revision
        )
        return snapshot

    async def start(self) -> None:
        """Start every worker; returns once all serve, or when a stop signal came first
        (then the phase stays `draining`)."""
        if self.fleet is not None:
            await self.fleet.join()
        self._save()
        await self.supervisor.start()
        if self.phase == "draining":
            return
        self.phase = "serving"
        self._sampler = asyncio.create_task(self._sample_forever())
        self._follower.reconcile(self.snapshot.spec, self.settings, always=True)
        self.rollout.start()
        self.rolling.start()

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.telemetry.sample()

    @property
    def leads_rollouts(self) -> bool:
        """Whether this instance runs the rollouts: always, unless a fleet elected another."""
        return self.fleet is None or self.fleet.leads_rollouts

    @property
    def ready(self) -> bool:
        """Serving, and every worker routes by the current revision."""
        return self.phase == "serving" and self.supervisor.all_serving(self.snapshot.revision)

    # Changes

    async def apply(
        self,
        edit: Callable[[Snapshot], Snapshot],
        *,
        actor: str,
        action: str,
        target: str,
        if_match: Collection[int] | None = None,
        record: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> Snapshot:
        """Make `edit(current)` the current snapshot everywhere, record and save it, return it.

        `edit` is a pure function (router.edits, with the rules of router.guards); its errors
        propagate and change nothing, as does PreconditionFailed when the current revision is
        not among `if_match` (checked first, so a stale write is refused even when it would
        change nothing). An edit whose result equals the current state (spec, health view)
        changes nothing and returns the current snapshot. `record` gives the history's
        before/after when the change is not one of the spec (health).
        """
        snapshot, changed = await self._commit(
            lambda current: Next(edit(current)),
            actor=actor,
            action=action,
            target=target,
            if_match=if_match,
            record=record,
        )
        if changed and self.fleet is not None:
            await self.fleet.link.wait_all(snapshot.revision)
        return snapshot

    async def apply_next(
        self,
        step: Step,
        *,
        actor: str,
        action: str,
        target: str,
        if_match: Collection[int] | None = None,
    ) -> Snapshot:
        """The write path for a step that changes more than the snapshot (a rollout's
        transition: the route's split and the rollout together, its own history record)."""
        snapshot, changed = await self._commit(
            step, actor=actor, action=action, target=target, if_match=if_match
        )
        if changed and self.fleet is not None:
            await self.fleet.link.wait_all(snapshot.revision)
        return snapshot

    async def _commit(
        self,
        step: Step,
        *,
        actor: str,
        action: str,
        target: str,
        if_match: Collection[int] | None = None,
        record: tuple[dict[str, Any], dict[str, Any]] | None = None,
    ) -> tuple[Snapshot, bool]:
        """The one write path: precondition, pure step, publish, ack, record, save, current.
        Returns the current snapshot afterwards and whether the step changed anything."""
        async with self._lock:
            for _ in range(COMMIT_ATTEMPTS):
                outcome = await self._try_commit(
                    step,
                    actor=actor,
                    action=action,
                    target=target,
                    if_match=if_match,
                    record=record,
                )
                if outcome is not None:
                    return outcome
            raise StateUnavailable(
                f"the fleet's state changed {COMMIT_ATTEMPTS} times while this write was "
                "being made; nothing was changed, try again"
            )

    async def _try_commit(
        self,
        step: Step,
        *,
        actor: str,
        action: str,
        target: str,
        if_match: Collection[int] | None,
        record: tuple[dict[str, Any], dict[str, Any]] | None,
    ) -> tuple[Snapshot, bool] | None:
        """One attempt of `_commit` (its lock held); None when another instance of the fleet
        wrote first: its state is then adopted, and the step must be computed again from it."""
        current = self.snapshot
        require_revision(if_match, current.revision)
        proposed = step(current)
        previous = self.settings
        settings = proposed.settings if proposed.settings is not None else previous
        snapshot = self._with_health(proposed.snapshot, settings)
        rollouts = proposed.rollouts if proposed.rollouts is not None else self.rollouts
        pool_rollouts = proposed.pool_rollouts
        if (
            same_state(snapshot, current)
            and settings == previous
            and rollouts == self.rollouts
            and pool_rollouts in (None, self.pool_rollouts)
        ):
            # Nothing changed: no new revision (it would make every other client's
            # If-Match stale), nothing to publish or record. A reload's file may still
            # differ (an edit that brings it in line with the runtime state): the next
            # reload compares against it, so keep and save it.
            if proposed.file_spec is not None and proposed.file_spec != self.file_spec:
                self.file_spec = proposed.file_spec
                self._save()
            return current, False
        file_spec = proposed.file_spec if proposed.file_spec is not None else self.file_spec
        pools = pool_rollouts if pool_rollouts is not None else self.pool_rollouts
        shared: SharedState | None = None
        if self.fleet is not None:
            snapshot, shared = self.fleet.revision_of(current, snapshot, file_spec, rollouts, pools)
        before_after = proposed.record or record or spec_diff(current.spec, snapshot.spec)
        change = Change(snapshot.revision, time.time(), actor, action, target, *before_after)
        mod_revision = 0
        if self.fleet is not None and shared is not None:
            committed = await self.fleet.link.commit(shared, change)
            if committed is None:
                await self.fleet.adopt_newer()
                return None
            mod_revision = committed
        # A worker that starts while this is published is sent the snapshot being
        # published: it must get the settings that go with it.
        self.settings = settings
        publishing = time.perf_counter()
        try:
            await self.supervisor.publish(snapshot, proposed.settings)
        except BaseException:
            self.settings = previous
            raise
        self.last_ack_seconds = time.perf_counter() - publishing
        self.snapshot = snapshot
        self.rollouts = rollouts
        self.pool_rollouts = pools
        self.file_spec = file_spec
        self._remember(change)
        if self.fleet is not None and shared is not None:
            self.fleet.link.applied(shared, mod_revision)
        self._save()
        self._announce(change, current.spec, snapshot.spec, settings is not previous)
        return snapshot, True

    def _announce(self, change: Change, before: Spec, after: Spec, new_settings: bool) -> None:
        """A change is live: the event line, the health checker, the listeners."""
        events.info(
            "%s",
            orjson.dumps(
                {
                    "event": change.action,
                    "revision": change.revision,
                    "actor": change.actor,
                    "target": change.target,
                }
            ).decode(),
        )
        if after != before or new_settings:
            self._follower.reconcile(after, self.settings)
        for listener in self.listeners:
            listener(change.actor, change.action, before, after, change.revision)

    def _with_health(self, snapshot: Snapshot, settings: Settings) -> Snapshot:
        """The snapshot with the health checker's view of its backends (a backend added at
        runtime starts in its pool's initial state), at the same revision."""
        health = self._follower.view(snapshot.spec, settings)
        readmitted = self.health.readmitted
        if health == dict(snapshot.health) and readmitted == dict(snapshot.readmitted):
            return snapshot
        return build_snapshot(snapshot.spec, health, snapshot.revision, readmitted, snapshot)

    async def _publish_health(
        self,
        health: dict[tuple[str, str], Health],
        readmitted: dict[tuple[str, str], float],
        action: str,
        target: str,
        why: str,
    ) -> None:
        """The health checker saw a backend go out of or back into rotation."""
        if self.phase == "draining":
            return
        state = "healthy" if action == "readmit" else "unhealthy"
        other = "unhealthy" if state == "healthy" else "healthy"
        await self.apply(
            lambda current: with_health_view(current, health, readmitted),
            actor="health-checker",
            action=action,
            target=target,
            record=({"health": other}, {"health": state, "why": why}),
        )

    def _outlier(self, pool: str, backend: str, reason: str, count: int) -> None:
        """A worker reported real requests to a backend failing in a row."""
        task = asyncio.ensure_future(self.health.outlier(pool, backend, reason, count))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self, actor: str = "config-file") -> Snapshot:
        """Re-read the configuration file; ConfigError (nothing changed) if it is invalid. A
        file that changes neither the routing state nor the settings makes no new revision.
        The file is read first; combining it with the runtime state is the write path's step."""
        settings, file_snapshot = load_config(self.config_path)

        step = reload_step(
            self.config_path, lambda: self.settings, lambda: self.file_spec, settings, file_snapshot
        )
        snapshot, changed = await self._commit(step, actor=actor, action="reload", target="config")
        if changed and self.fleet is not None:
            await self.fleet.link.wait_all(snapshot.revision)
        if changed:
            self.reloads += 1
            log.info("reloaded %s: revision %d", self.config_path, snapshot.revision)
        else:
            log.info(
                "reloaded %s: nothing changed (revision %d)", self.config_path, snapshot.revision
            )
        return snapshot

    # History

    def route_at(self, name: str, revision: int) -> RouteSpec | None:
        """The route's definition as it was at `revision`, from the history. None when the
        history does not reach back that far, or the route did not exist then."""
        return route_at(self.history, self.snapshot.spec, self.snapshot.revision, name, revision)

    def _record_diff(
        self,
        revision: int,
        actor: str,
        action: str,
        before: Spec,
        after: Spec,
        target: str = "config",
    ) -> None:
        self._record(revision, actor, action, target, *spec_diff(before, after))

    def _record(
        self,
        revision: int,
        actor: str,
        action: str,
        target: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        self._remember(Change(revision, time.time(), actor, action, target, before, after))

    def _remember(self, change: Change) -> None:
        self.history.append(change)
        del self.history[:-HISTORY_LIMIT]

    def _save(self) -> None:
        try:
            self.state_file.save(
                SavedState(
                    self.snapshot.revision,
                    self.file_spec,
                    self.snapshot.spec,
                    tuple(self.history),
                    tuple(self.rollouts[route] for route in sorted(self.rollouts)),
                    tuple(self.pool_rollouts[pool] for pool in sorted(self.pool_rollouts)),
                )
            )
        except OSError as error:
            # The change is live in every worker already; losing its persistence is logged
            # loudly rather than undone.
            log.error("could not save runtime state to %s: %s", self.state_file.path, error)

    # Stop

    async def shutdown(self) -> None:
        """Drain: /ready turns 503, workers finish in-flight requests, then exit."""
        if self.phase == "draining":
            return
        self.phase = "draining"
        if self.fleet is not None:
            # Leave the fleet first: other instances' writes stop waiting for this one.
            await self.fleet.stop()
        await self.health.stop()
        await self.rollout.stop()
        await self.rolling.stop()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        grace = self.settings.process.shutdown_timeout
        log.info("draining: in-flight requests have up to %g s", grace)
        await self.supervisor.drain(grace)

    def force_stop(self) -> None:
        log.warning("second signal: stopping now")
        self.supervisor.kill_all()
