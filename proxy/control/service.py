"""The control service: the one public API of the control plane, for every writer and reader.

Theory of operation. Commands (set weights, switch, roll back, promote, abort, undo, set a
backend's state, add and remove backends, reload) take plain values and return the state they
made, as plain values (proxy.control.values); queries (routes, pools with health and in-flight
counts, workers, history, telemetry sums, the observed split) return the same kind of values.
Adapters (the admin HTTP API, the CLI through it, a rollout controller inside proxy/) parse
their input, call this, and render; none of them sees the supervisor, the health checker or the
telemetry, and none holds a rule.

Every rule is enforced here, by pure functions of router/: the edits validate the routing state
(router.edits), a change that moves traffic onto a pool with no eligible backend needs `force`
(router.guards.require_eligible), a backend is removed only out of service
(router.guards.require_out_of_service), and If-Match is checked first
(router.preconditions). Every command writes through the control plane's one write path
(ControlPlane._commit): precondition, pure edit, publish, ack, record, save.

Names are checked before the write (NotFound), so an unknown name is refused whatever the
precondition says; the rules run inside the write, against the state the write replaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping

from proxy.config import BackendConfig, ConfigError
from proxy.control.errors import InvalidConfig, RevisionUnavailable
from proxy.control.pool_rollouts import PoolRolloutCommands
from proxy.control.queries import Queries
from proxy.control.rollouts import RolloutCommands
from proxy.control.values import BackendState, PoolState, RouteState
from router import (
    AdminState,
    Snapshot,
    abort,
    promote,
    rollback,
    switch_active,
    with_backend,
    with_backend_added,
    with_backend_removed,
    with_route,
    with_weights,
)
from router.guards import require_eligible, require_out_of_service

DRAIN_POLL = 0.05
"""How often `wait_drained` asks the workers for their in-flight counts."""

IfMatch = Collection[int] | None
"""The revisions a write may apply to; None: any (no precondition)."""


class ControlService(Queries, RolloutCommands, PoolRolloutCommands):
    """The control plane's commands, and its queries (proxy.control.queries). Cheap to make:
    it holds only the plane."""

    # Route commands

    async def set_weights(
        self,
        route: str,
        weights: Mapping[str, int],
        *,
        actor: str,
        if_match: IfMatch = None,
        force: bool = False,
    ) -> RouteState:
        """Replace a weighted route's weights."""
        return await self._route_change(
            route,
            "set-weights",
            lambda current: with_weights(current, route, weights),
            actor,
            if_match,
            force,
        )

    async def switch(
        self, route: str, to: str, *, actor: str, if_match: IfMatch = None, force: bool = False
    ) -> RouteState:
        """Blue-green: make `to` the active colour."""
        return await self._route_change(
            route,
            "switch",
            lambda current: switch_active(current, route, to),
            actor,
            if_match,
            force,
        )

    async def rollback(
        self, route: str, *, actor: str, if_match: IfMatch = None, force: bool = False
    ) -> RouteState:
        """Back to the previous colour or weights."""
        return await self._route_change(
            route, "rollback", lambda current: rollback(current, route), actor, if_match, force
        )

    async def promote(
        self,
        route: str,
        pool: str | None = None,
        *,
        actor: str,
        if_match: IfMatch = None,
        force: bool = False,
    ) -> RouteState:
        """Canary (or `pool`) to 100 %."""
        return await self._route_change(
            route, "promote", lambda current: promote(current, route, pool), actor, if_match, force
        )

    async def abort(self, route: str, *, actor: str, if_match: IfMatch = None) -> RouteState:
        """Baseline to 100 %. Never guarded: it moves traffic back to the baseline, and
        refusing it for an unhealthy baseline would leave it on the canary being aborted."""
        return await self._route_change(
            route, "abort", lambda current: abort(current, route), actor, if_match, force=True
        )

    async def undo(
        self,
        route: str,
        to_revision: int,
        *,
        actor: str,
        if_match: IfMatch = None,
        force: bool = False,
    ) -> RouteState:
        """Restore the route as it was at `to_revision`; RevisionUnavailable when the history
        does not say."""
        plane = self._plane

        def restore(current: Snapshot) -> Snapshot:
            spec = plane.route_at(route, to_revision)
            if spec is None:
                raise RevisionUnavailable(route, to_revision)
            return with_route(current, spec)

        action = f"undo-to-{to_revision}"
        return await self._route_change(route, action, restore, actor, if_match, force)

    # Backend commands

    async def set_backend(
        self,
        pool: str,
        backend: str,
        *,
        admin_state: AdminState | None = None,
        weight: int | None = None,
        actor: str,
        if_match: IfMatch = None,
        force: bool = False,
    ) -> BackendState:
        """Drain, put in maintenance, re-enable and/or re-weight a backend."""
        self.require_backend(pool, backend)

        def edit(current: Snapshot) -> Snapshot:
            changed = with_backend(current, pool, backend, admin_state=admin_state, weight=weight)
            if not force:
                require_eligible(current, changed)
            return changed

        snapshot = await self._plane.apply(
            edit,
            actor=actor,
            action=f"set-{admin_state}" if admin_state else "set-weight",
            target=f"pool/{pool}/backend/{backend}",
            if_match=if_match,
        )
        return self._backend_state(pool, backend, snapshot)

    async def add_backend(
        self,
        pool: str,
        name: str,
        url: str,
        *,
        weight: int = 1,
        admin_state: AdminState = "ready",
        actor: str,
        if_match: IfMatch = None,
    ) -> PoolState:
        """Add a backend; pydantic's ValidationError names the field when the URL is not one
        the configuration file would take."""
        self.require_pool(pool)
        spec = BackendConfig(name=name, url=url, weight=weight, admin_state=admin_state).spec()
        snapshot = await self._plane.apply(
            lambda current: with_backend_added(current, pool, spec),
            actor=actor,
            action="add-backend",
            target=f"pool/{pool}/backend/{spec.name}",
            if_match=if_match,
        )
        return self._pool_state(pool, snapshot)

    async def remove_backend(
        self,
        pool: str,
        backend: str,
        *,
        actor: str,
        if_match: IfMatch = None,
        force: bool = False,
    ) -> PoolState:
        """Remove a backend; without `force` only one out of service (BackendInService) whose
        removal strands no traffic (NoEligibleBackend)."""
        self.require_backend(pool, backend)

        def remove(current: Snapshot) -> Snapshot:
            if not force:
                require_out_of_service(current.spec, pool, backend)
            changed = with_backend_removed(current, pool, backend)
            if not force:
                require_eligible(current, changed)
            return changed

        snapshot = await self._plane.apply(
            remove,
            actor=actor,
            action="remove-backend",
            target=f"pool/{pool}/backend/{backend}",
            if_match=if_match,
        )
        return self._pool_state(pool, snapshot)

    async def wait_drained(self, pool: str, backend: str, seconds: float) -> int:
        """Wait until no worker has a request in flight to the backend (or the deadline): the
        requests left. Sound after a drain acknowledged by every worker, because a worker picks
        a backend only from the snapshot current when a request's routing begins."""
        plane = self._plane
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            await plane.supervisor.query_stats()
            left = plane.telemetry.inflight().get((pool, backend), 0)
            if left == 0 or loop.time() >= deadline:
                return left
            await asyncio.sleep(min(DRAIN_POLL, max(0.0, deadline - loop.time())))

    # Instance commands

    async def reload(self, *, actor: str = "config-file") -> int:
        """Re-read the configuration file; the revision after it. InvalidConfig (nothing
        changed) when the file is invalid."""
        try:
            snapshot = await self._plane.reload(actor=actor)
        except ConfigError as error:
            raise InvalidConfig(error.path, tuple(error.problems)) from error
        return snapshot.revision

    # Shared

    async def _route_change(
        self,
        route: str,
        action: str,
        edit: Callable[[Snapshot], Snapshot],
        actor: str,
        if_match: IfMatch,
        force: bool,
    ) -> RouteState:
        self.require_route(route)

        def guarded(current: Snapshot) -> Snapshot:
            changed = edit(current)
            if not force:
                require_eligible(current, changed)
            return changed

        snapshot = await self._plane.apply(
            guarded, actor=actor, action=action, target=f"route/{route}", if_match=if_match
        )
        return self._route_state(route, snapshot)
