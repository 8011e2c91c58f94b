"""One instance's link to the fleet: what the control plane calls when its state lives in etcd.

Theory of operation. The control plane keeps its one write path (`ControlPlane._commit`) and
its one lock; in fleet mode the link adds three things to it:

- A write is an etcd txn (`commit`) comparing `P/state`'s mod_revision with `mod_revision`, the
  one of the state this instance routes by. It is made before anything is published; if another
  instance wrote first the txn writes nothing, the plane adopts the newer state (`load`) and
  recomputes its step from it, so If-Match is checked against the fleet's revision and no update
  is lost. etcd down: `StateUnavailable` (503), nothing changed anywhere.
- Every other instance's write arrives through the `StateWatcher` (in order, from the last
  applied mod_revision + 1, never skipping ahead) and is adopted under the same lock.
- After a state is live here (`applied`): the last-known-good copy is saved (an instance
  restarted while etcd is down serves it) and the applied revision is published under the
  membership lease. `wait_all` then holds an admin write until every live instance published
  it (`FleetLagging`, 504, names those that did not), unless the request asked `?wait=local`.

`mod_revision` only ever grows, and it always belongs to the state the plane routes by or a
newer one the plane is adopting; the txn guard is therefore never older than what we route by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeVar

from proxy.control.errors import FleetLagging, StateUnavailable
from proxy.fleet.etcd import EtcdClient, EtcdError, EtcdUnavailable
from proxy.fleet.layout import BadDocument, Keys, SharedState, decode_change
from proxy.fleet.leader import Leadership
from proxy.fleet.members import Membership
from proxy.fleet.store import FleetStore, LastKnownGood, UnreadableCopy
from proxy.fleet.watcher import StateWatcher
from proxy.state import Change

log = logging.getLogger("turnout.fleet")

WaitScope = Literal["fleet", "local"]
WAIT: ContextVar[WaitScope] = ContextVar("turnout_fleet_wait", default="local")
"""How far a write waits: the admin API sets "fleet" for its requests (unless `?wait=local`);
the rollout controllers and the health checker write with the default, "local"."""

T = TypeVar("T")

LEADER_JOB = "rollouts"
_RETRY = 1.0


class FleetLink:
    """This instance's link to the fleet under `prefix` (see the module's theory)."""

    def __init__(
        self,
        client: EtcdClient,
        *,
        prefix: str,
        instance: str,
        address: str,
        last_known_good: Path,
        wait: float = 5.0,
        ttl: int = 5,
    ) -> None:
        self.client = client
        self.prefix = Keys(prefix).prefix
        self.keys = Keys(self.prefix)
        self.instance = instance
        self.wait = wait
        self.store = FleetStore(client, self.prefix)
        self.copy = LastKnownGood(last_known_good, self.prefix)
        self.membership = Membership(client, self.prefix, instance, address, ttl)
        self.leadership = Leadership(
            client, self.prefix, LEADER_JOB, instance, lambda: self.membership.lease
        )
        self.mod_revision = 0
        """P/state's mod_revision of the state this instance routes by (0: none in etcd)."""
        self.conflicts = 0
        """Writes whose txn lost to another instance's (counted for /metrics)."""
        self.unavailable = 0
        """Calls refused because etcd could not be reached."""
        self.lagging = 0
        """Writes answered before every live instance applied them (504)."""
        self.watcher: StateWatcher | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def is_leader(self) -> bool:
        return self.leadership.is_leader

    # Start

    def local_copy(self) -> tuple[SharedState, int] | None:
        """The last-known-good copy on disk, None when there is none or it cannot be read."""
        try:
            return self.copy.load()
        except UnreadableCopy as error:
            log.error("%s; not using it", error)
            return None

    async def load(self) -> tuple[SharedState, int] | None:
        """The fleet's state and its mod_revision (None: the fleet has none yet);
        StateUnavailable when etcd cannot answer."""
        return await self._etcd(self.store.load())

    def start(self, apply: Callable[[SharedState, int], Awaitable[None]], applied: int) -> None:
        """Follow the fleet from `mod_revision` + 1, join it and campaign for rollouts."""
        self.watcher = StateWatcher(
            self.client, self.prefix, apply, self.mod_revision + 1, applied_revision=applied
        )
        self.watcher.start()
        self._spawn(self._join(applied))

    async def _join(self, applied: int) -> None:
        while True:
            try:
                await self.membership.start()
                break
            except EtcdError as error:
                log.warning("cannot join the fleet yet (%s); trying again", error)
                await asyncio.sleep(_RETRY)
        await self.membership.publish(applied)
        self.leadership.start()

    async def stop(self) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(EtcdError):
            await self.leadership.resign()
        with contextlib.suppress(EtcdError):
            await self.membership.stop()
        await self.client.close()

    # Writes

    async def commit(self, state: SharedState, change: Change) -> int | None:
        """Write `state` if the fleet is still at `mod_revision`: its new mod_revision, or None
        when another instance wrote first (nothing was written)."""
        committed = await self._etcd(self.store.commit(self.mod_revision, state, change))
        if committed is None:
            self.conflicts += 1
        return committed

    def applied(self, state: SharedState, mod_revision: int) -> None:
        """`state` is live in every worker here: keep the copy, tell the fleet."""
        self.mod_revision = max(self.mod_revision, mod_revision)
        try:
            self.copy.save(state, mod_revision)
        except OSError as error:
            log.error("could not save the last-known-good copy %s: %s", self.copy.path, error)
        self._spawn(self.membership.publish(state.revision))

    async def wait_all(self, revision: int) -> None:
        """Hold an admin write until every live instance applied `revision` (not for
        `?wait=local` or anything but an admin request); FleetLagging past the deadline."""
        if WAIT.get() != "fleet":
            return
        # Our own record first: the publish spawned by `applied` may still be in flight.
        await self.membership.publish(revision)
        done, laggards = await self.membership.wait_applied(revision, time.monotonic() + self.wait)
        if not done:
            self.lagging += 1
            raise FleetLagging(revision, tuple(laggards), self.wait)

    # History

    async def change_at(self, revision: int) -> Change | None:
        """The history entry of `revision`, None when etcd cannot say (best effort)."""
        try:
            found = await self.client.get(self.keys.history_entry(revision))
            return None if found is None else decode_change(found[0])
        except (EtcdError, BadDocument) as error:
            log.warning("history entry %d unavailable: %s", revision, error)
            return None

    async def history(self) -> list[Change] | None:
        try:
            return await self.store.history()
        except (EtcdError, BadDocument) as error:
            log.warning("the fleet's history is unavailable: %s", error)
            return None

    # GET /v1/fleet

    async def view(self, revision: int) -> dict[str, Any]:
        instances: list[dict[str, Any]] = []
        leader: str | None = None
        try:
            members = await self.membership.members()
            found = await self.client.get(self.keys.leader)
            leader = found[0].decode() if found is not None else None
            etcd = "reachable"
            instances = [
                {
                    "instance": m.instance,
                    "applied": m.applied,
                    "address": m.address,
                    "started": m.started,
                    "seen": m.seen,
                    "self": m.instance == self.instance,
                }
                for m in sorted(members, key=lambda m: m.instance)
            ]
        except EtcdError:
            etcd = "unreachable"
        return {
            "backend": "etcd",
            "prefix": self.prefix,
            "instance": self.instance,
            "revision": revision,
            "leader": leader,
            "etcd": etcd,
            "instances": instances,
        }

    # Helpers

    async def _etcd(self, call: Awaitable[T]) -> T:
        try:
            result = await call
        except EtcdUnavailable as error:
            self.unavailable += 1
            raise StateUnavailable(str(error)) from error
        return result

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coroutine
            except EtcdError as error:  # background: the next keepalive publishes again
                log.debug("fleet: %s", error)

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
