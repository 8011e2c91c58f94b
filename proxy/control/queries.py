"""The control service's queries: what the state is, as plain values (proxy.control.values).

Theory of operation. A query reads the current snapshot and the control plane's parts (the
telemetry sums, the health checker, the worker slots) and copies what it needs into frozen
values, so no caller ever holds a live object. Queries that show counters (routes, pools,
workers) first ask every worker for fresh ones, so an answer is as of now, not of the last
once-a-second report. The name checks live here too: commands and adapters both use them.
"""

from __future__ import annotations

import time
from typing import Any

from proxy.control.errors import NotFound
from proxy.control.plane import ControlPlane
from proxy.control.values import (
    BackendState,
    CheckState,
    EjectionState,
    FleetCounters,
    HealthCounters,
    HistoryPage,
    InstanceState,
    Pools,
    PoolState,
    ProbeState,
    Readiness,
    RequestRules,
    RouteCounters,
    RouteCounts,
    Routes,
    RouteState,
    SlowStartState,
    Workers,
    WorkerState,
)
from proxy.health import BackendHealth
from router import Snapshot
from router.slowstart import ramp_of


class Queries:
    """Reads of the control plane; `ControlService` adds the commands."""

    def __init__(self, plane: ControlPlane) -> None:
        self._plane = plane

    # Names

    def require_route(self, name: str) -> None:
        if self._plane.snapshot.spec.route(name) is None:
            raise NotFound("route", name)

    def require_pool(self, name: str) -> None:
        if self._plane.snapshot.spec.pool(name) is None:
            raise NotFound("pool", name)

    def require_backend(self, pool: str, backend: str) -> None:
        self.require_pool(pool)
        spec = self._plane.snapshot.spec.pool(pool)
        if spec is None or all(b.name != backend for b in spec.backends):
            raise NotFound("backend", f"{pool}/{backend}")

    # Queries

    def revision(self) -> int:
        return self._plane.snapshot.revision

    def fleet_counters(self) -> FleetCounters | None:
        fleet = self._plane.fleet
        if fleet is None:
            return None
        link = fleet.link
        return FleetCounters(link.is_leader, link.conflicts, link.unavailable, link.lagging)

    async def fleet(self) -> dict[str, Any]:
        """The fleet sharing this instance's state (file mode: this instance alone)."""
        plane = self._plane
        if plane.fleet is None:
            return {
                "backend": "file",
                "instance": None,
                "revision": plane.snapshot.revision,
                "instances": [],
            }
        return await plane.fleet.view()

    def readiness(self) -> Readiness:
        plane = self._plane
        return Readiness(
            ready=plane.ready,
            phase=plane.phase,
            revision=plane.snapshot.revision,
            workers=len(plane.supervisor.slots),
        )

    async def routes(self, *, fresh: bool = True) -> Routes:
        """Every route, with the observed split as of now (the workers are asked; with
        `fresh=False`, as of their last reports: for a caller that has just asked them)."""
        if fresh:
            await self.refresh_counters()
        snapshot = self._plane.snapshot
        states = tuple(self._route_state(spec.name, snapshot) for spec in snapshot.spec.routes)
        return Routes(snapshot.revision, states)

    async def route(self, name: str) -> RouteState:
        self.require_route(name)
        await self.refresh_counters()
        return self._route_state(name, self._plane.snapshot)

    async def pools(self, *, fresh: bool = True) -> Pools:
        """Every pool, with health and in-flight counts as of now (`fresh` as for routes)."""
        if fresh:
            await self.refresh_counters()
        snapshot = self._plane.snapshot
        states = tuple(self._pool_state(spec.name, snapshot) for spec in snapshot.spec.pools)
        return Pools(snapshot.revision, states)

    async def pool(self, name: str) -> PoolState:
        self.require_pool(name)
        await self.refresh_counters()
        return self._pool_state(name, self._plane.snapshot)

    def backend(self, pool: str, backend: str) -> BackendState:
        """One backend as of the workers' last reports (`wait_drained` has just asked them)."""
        self.require_backend(pool, backend)
        return self._backend_state(pool, backend, self._plane.snapshot)

    async def workers(self, *, fresh: bool = True) -> Workers:
        if fresh:
            await self.refresh_counters()
        plane = self._plane
        return Workers(plane.snapshot.revision, plane.supervisor.crashes, self._worker_states())

    def history(self, limit: int) -> HistoryPage:
        """The last `limit` changes, newest first."""
        plane = self._plane
        return HistoryPage(plane.snapshot.revision, tuple(reversed(plane.history[-limit:])))

    def request_rules(self) -> RequestRules:
        plane = self._plane
        downstream = plane.settings.downstream
        return RequestRules(
            plane.snapshot,
            downstream.normalize_path,
            downstream.merge_slashes,
            downstream.max_header_bytes,
        )

    def tokens(self) -> tuple[tuple[str, str, str], ...]:
        """The admin API's bearer tokens: (name, secret, role)."""
        return tuple((t.name, t.secret(), t.role) for t in self._plane.settings.admin.tokens)

    async def refresh_counters(self) -> None:
        """Ask every worker for its counters now (the last report of one that is slow)."""
        await self._plane.supervisor.query_stats()

    def instance(self) -> InstanceState:
        """Telemetry sums, health counters and workers, as of the workers' last reports."""
        plane = self._plane
        return InstanceState(
            snapshot=plane.snapshot,
            buckets=tuple(plane.settings.metrics.buckets),
            routes=plane.telemetry.routes(),
            backends=plane.telemetry.backends(),
            health={
                key: HealthCounters(
                    state.ejected_by_probes,
                    state.ejected_by_outliers,
                    state.checked,
                    state.probes_ok,
                    state.probes_failed,
                )
                for key, state in plane.health.backends.items()
            },
            workers=self._worker_states(),
            crashes=plane.supervisor.crashes,
        )

    def route_counters(self) -> RouteCounters:
        """Requests, 5xx answers and duration buckets per (route, pool), as of the workers'
        last reports: what the dashboard's per-second series are the differences of."""
        plane = self._plane
        return RouteCounters(
            bounds=tuple(plane.settings.metrics.buckets),
            routes={
                key: RouteCounts(
                    requests=total.requests,
                    errors=sum(n for code, n in total.codes.items() if code >= 500),
                    buckets=tuple(total.buckets),
                )
                for key, total in plane.telemetry.routes().items()
            },
        )

    def _route_state(self, name: str, snapshot: Snapshot) -> RouteState:
        spec = snapshot.spec.route(name)
        assert spec is not None
        return RouteState(snapshot.revision, spec, self._plane.telemetry.observed(name))

    def _pool_state(self, name: str, snapshot: Snapshot) -> PoolState:
        plane = self._plane
        spec = snapshot.spec.pool(name)
        assert spec is not None
        pool = snapshot.pools[name]
        inflight = plane.telemetry.inflight()
        eligible = {backend.name for backend in pool.eligible}
        now = time.time()
        backends = []
        for backend in pool.backends:
            ramp = ramp_of(pool, backend.name, now)
            health = plane.health.backends.get((name, backend.name))
            backends.append(
                BackendState(
                    revision=snapshot.revision,
                    name=backend.name,
                    url=f"http://{backend.host}:{backend.port}",
                    weight=backend.weight,
                    effective_weight=ramp.effective_weight if ramp else backend.weight,
                    admin_state=backend.admin_state,
                    health=backend.health,
                    eligible=backend.name in eligible,
                    inflight=inflight.get((name, backend.name), 0),
                    check=_check(health) if health is not None and health.checked else None,
                    ejection=_ejection(health) if health is not None and health.ejected else None,
                    slow_start=SlowStartState(
                        ramp.progress, ramp.started, ramp.until, max(0.0, ramp.until - now)
                    )
                    if ramp is not None
                    else None,
                )
            )
        return PoolState(
            snapshot.revision, spec, tuple(backends), len(pool.eligible), bool(pool.panic)
        )

    def _backend_state(self, pool: str, backend: str, snapshot: Snapshot) -> BackendState:
        return next(b for b in self._pool_state(pool, snapshot).backends if b.name == backend)

    def _worker_states(self) -> tuple[WorkerState, ...]:
        return tuple(
            WorkerState(
                id=slot.worker_id,
                pid=slot.pid,
                live=slot.live,
                serving=slot.live and slot.serving,
                revision=slot.acked,
                crashes=slot.crashes,
                requests=slot.stats.requests if slot.stats else 0,
                connections=slot.stats.connections if slot.stats else 0,
            )
            for slot in self._plane.supervisor.slots
        )


def _check(state: BackendHealth) -> CheckState:
    last = state.last
    probe = (
        ProbeState(last.at, last.ok, last.status, last.error, last.duration)
        if last is not None
        else None
    )
    return CheckState(state.state, state.successes, state.failures, probe)


def _ejection(state: BackendHealth) -> EjectionState:
    remaining = max(0.0, state.ejected_until - time.monotonic())
    return EjectionState(
        state.ejection_reason or "", state.ejected_at, time.time() + remaining, state.ejections
    )
