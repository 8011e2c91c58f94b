"""The control plane's fleet mode: its state lives in etcd, shared by every instance.

Theory of operation (`FleetSync`, the plane's `fleet` in fleet mode; the link to
etcd itself is proxy.fleet.link.FleetLink):

- Start: the last-known-good copy (if any) is what the instance routes by until etcd answers
  (`restore_copy`, at construction). `join` then reads the fleet's state: none yet, and
  this instance seeds it (a txn that requires absence: of several starting together one seeds,
  the others adopt its state); one there, and it is adopted as is (the configuration file's
  routes do not override the fleet's: `POST /v1/reload` pushes them). etcd unreachable: the
  instance serves what it has, admin writes answer 503, and the watcher adopts the fleet's state
  once etcd answers.
- One revision for the fleet: a change of the shared part (spec, rollouts, the file's spec) is
  committed at the current revision + 1; a change of this instance alone (health, slow start,
  settings) keeps the revision (`revision_of`) and is published to the workers at it.
- Another instance's write arrives through the watcher and is adopted under the plane's lock
  (`adopt`): published to every worker, remembered in the history (its entry read from etcd),
  announced to the listeners as a change made by that write's actor.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.config import Settings
from proxy.control.errors import StateUnavailable
from proxy.control.fleet_counts import FleetCounts
from proxy.control.rolling.model import PoolRollout
from proxy.control.rollout.model import Rollout
from proxy.state import HISTORY_LIMIT, Change
from router import Snapshot, Spec, build_snapshot

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane
    from proxy.fleet.layout import SharedState
    from proxy.fleet.link import FleetLink

log = logging.getLogger("turnout.control")


def fleet_sync(plane: ControlPlane, settings: Settings, config_path: Path) -> FleetSync | None:
    """The link to etcd when `[state] backend = "etcd"`, else None (the file is the state)."""
    state = settings.state
    if state.backend != "etcd":
        return None
    # Imported here: the fleet's modules import the control plane's errors.
    from proxy.fleet.connect import client_from, instance_name
    from proxy.fleet.link import FleetLink

    etcd = state.etcd
    admin = settings.admin
    copy = etcd.last_known_good or config_path.with_name(config_path.stem + ".fleet.json")
    link = FleetLink(
        client_from(etcd),
        prefix=etcd.prefix,
        instance=instance_name(etcd, admin.port),
        address=f"http://{admin.host}:{admin.port}",
        last_known_good=copy,
        wait=etcd.wait,
        ttl=etcd.ttl,
    )
    return FleetSync(plane, link)


def shared_state(
    snapshot: Snapshot,
    file_spec: Spec,
    rollouts: Mapping[str, Rollout],
    pool_rollouts: Mapping[str, PoolRollout],
) -> SharedState:
    # Imported here: proxy.fleet.layout imports the rollouts' models, whose package imports
    # the control plane, which imports this module.
    from proxy.fleet.layout import SharedState

    return SharedState(
        snapshot.revision,
        file_spec,
        snapshot.spec,
        tuple(rollouts[route] for route in sorted(rollouts)),
        tuple(pool_rollouts[pool] for pool in sorted(pool_rollouts)),
    )


class FleetSync:
    """Fleet mode's part of a ControlPlane: `plane.fleet` when its state lives in etcd."""

    def __init__(self, plane: ControlPlane, link: FleetLink) -> None:
        self.plane = plane
        self.link = link
        self.counts = FleetCounts(plane, link)
        self._history_task: asyncio.Task[None] | None = None
        self.own_file_spec: Spec | None = None
        """This instance's configuration file's spec, as read at start."""

    @property
    def leads_rollouts(self) -> bool:
        return self.link.is_leader

    def restore_copy(self, file_snapshot: Snapshot) -> Snapshot:
        """At construction: the last-known-good copy, else the configuration file's state."""
        self.own_file_spec = file_snapshot.spec
        copy = self.link.local_copy()
        if copy is None:
            self.plane._record(1, "config-file", "start", "config", None, None)
            return file_snapshot
        state, mod_revision = copy
        self.link.mod_revision = mod_revision
        log.info(
            "serving the fleet's last-known-good state (revision %d) from %s until etcd answers",
            state.revision,
            self.link.copy.path,
        )
        return self.take(state)

    def take(self, state: SharedState, previous: Snapshot | None = None) -> Snapshot:
        """Make `state` the plane's shared part; returns the snapshot to route by (with this
        instance's health view). The caller publishes it and makes it current."""
        plane = self.plane
        plane.rollouts = {rollout.route: rollout for rollout in state.rollouts}
        plane.pool_rollouts = {rollout.pool: rollout for rollout in state.pool_rollouts}
        plane.file_spec = state.file_spec
        # From the snapshot it replaces: only what the fleet's change changed is compiled.
        snapshot = build_snapshot(state.spec, {}, state.revision, None, previous)
        return plane._with_health(snapshot, plane.settings)

    async def join(self) -> None:
        """Before the workers start: seed or adopt the fleet's state, then follow it."""
        plane, link = self.plane, self.link
        try:
            found = await link.load()
            if found is None:
                # The fleet has no state (a new prefix, or etcd's data was lost): seed it with
                # what this instance routes by, on condition that the key does not exist.
                link.mod_revision = 0
                state = shared_state(
                    plane.snapshot, plane.file_spec, plane.rollouts, plane.pool_rollouts
                )
                change = Change(
                    state.revision, time.time(), "config-file", "fleet-seeded", "config", None, None
                )
                committed = await link.commit(state, change)
                if committed is not None:
                    log.info(
                        "seeded the fleet's state under %s from %s (revision %d)",
                        link.prefix,
                        plane.config_path,
                        state.revision,
                    )
                    plane.history = [change]  # the fleet's history starts here
                    link.applied(state, committed)
                else:
                    found = await link.load()
            if found is not None:
                state, mod_revision = found
                if state.file_spec != self.own_file_spec:
                    log.warning(
                        "the fleet's state (revision %d) is used, not %s's routes; "
                        "POST /v1/reload pushes this file's routes to the fleet",
                        state.revision,
                        plane.config_path,
                    )
                plane.snapshot = self.take(state, plane.snapshot)
                link.mod_revision = mod_revision
                history = await link.history()
                if history is None:
                    self._reread_history()
                else:
                    # Entries past the state read: the watcher brings them, each once.
                    plane.history = [c for c in history if c.revision <= state.revision]
                link.applied(state, mod_revision)
        except StateUnavailable as error:
            log.warning(
                "etcd cannot be reached (%s): serving revision %d; admin writes answer 503 "
                "until it answers",
                error,
                plane.snapshot.revision,
            )
        link.start(self.adopt_watched, plane.snapshot.revision)
        self.counts.publisher.start()

    async def stop(self) -> None:
        """Leave the fleet: other instances' writes stop waiting for this one."""
        if self._history_task is not None:
            self._history_task.cancel()
        await self.counts.publisher.stop()
        await self.link.stop()

    def revision_of(
        self,
        current: Snapshot,
        snapshot: Snapshot,
        file_spec: Spec,
        rollouts: Mapping[str, Rollout],
        pool_rollouts: Mapping[str, PoolRollout],
    ) -> tuple[Snapshot, SharedState | None]:
        """The proposed snapshot at the revision it belongs to, and the shared state to commit
        (None: the change is this instance's alone, and keeps the revision)."""
        plane = self.plane
        shared = (
            snapshot.spec != current.spec
            or rollouts != plane.rollouts
            or pool_rollouts != plane.pool_rollouts
            or file_spec != plane.file_spec
        )
        revision = current.revision + 1 if shared else current.revision
        if snapshot.revision != revision:
            snapshot = build_snapshot(
                snapshot.spec, dict(snapshot.health), revision, dict(snapshot.readmitted), snapshot
            )
        if not shared:
            return snapshot, None
        return snapshot, shared_state(snapshot, file_spec, rollouts, pool_rollouts)

    async def adopt_newer(self) -> None:
        """Another instance wrote first: adopt the fleet's state now (the lock is held)."""
        found = await self.link.load()
        if found is None:
            self.link.mod_revision = 0  # the key is gone: the next attempt creates it
        else:
            await self.adopt(*found)

    async def adopt_watched(self, state: SharedState, mod_revision: int) -> None:
        async with self.plane._lock:
            await self.adopt(state, mod_revision)

    async def adopt(self, state: SharedState, mod_revision: int) -> None:
        """Route by the fleet's `state` (the plane's lock held); nothing when it is not newer."""
        plane, link = self.plane, self.link
        current = plane.snapshot
        if state.revision <= current.revision:
            link.mod_revision = max(link.mod_revision, mod_revision)
            return
        taken = self.take(state, current)
        await plane.supervisor.publish(taken)
        plane.snapshot = taken
        link.applied(state, mod_revision)
        change = None
        if state.revision == current.revision + 1:
            change = await link.change_at(state.revision)
        if change is not None:
            plane._remember(change)
        else:
            # Several revisions at once (a snapshot after a compaction), or etcd failed just
            # now: the whole history, read until it can be.
            self._reread_history()
            change = Change(
                state.revision, time.time(), "fleet", "fleet-sync", "config", None, None
            )
        plane._announce(change, current.spec, taken.spec, False)

    def _reread_history(self) -> None:
        if self._history_task is None or self._history_task.done():
            self._history_task = asyncio.ensure_future(self._read_history())

    async def _read_history(self) -> None:
        """Replace the history by etcd's, keeping entries applied since the read (bounded
        backoff while etcd is away; the state itself is already applied)."""
        pause = 0.1
        while (fetched := await self.link.history()) is None:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)
        plane = self.plane
        # Under the plane's lock: a write or an adoption remembers its entry in the same hold
        # as it makes its revision current, so every entry up to the current revision is here
        # or was lost; those past it are the watcher's to add, each once.
        async with plane._lock:
            fetched = [c for c in fetched if c.revision <= plane.snapshot.revision]
            newest = fetched[-1].revision if fetched else 0
            plane.history = fetched + [c for c in plane.history if c.revision > newest]
            del plane.history[:-HISTORY_LIMIT]

    async def view(self) -> dict[str, Any]:
        """GET /v1/fleet."""
        return await self.link.view(self.plane.snapshot.revision)
