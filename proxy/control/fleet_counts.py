"""Fleet mode: the rollouts' counts of every instance, for the judge on the leader.

Theory of operation. Every instance publishes, each second, what its live rollouts' judges read
of its own traffic (proxy.fleet.counts: per (route, pool) attempts, failed attempts and the
latency histogram; per (pool, backend) attempts, failed attempts and requests in flight), with
the oldest revision its workers routed by when read. The leader's controllers call `sums`
each tick: every other instance's latest published reading plus this instance's fresh one,
folded by the controller's own `Accumulator` into totals that only grow (an instance that joins
counts from its first reading on; one that leaves keeps what it gave). The route judge and the
pool judge then read the fleet exactly as they read one instance.

In flight across the fleet (a pool rollout's drain): another instance's reading counts as
(revision, in-flight), like a local worker's report, so a reading from before the drain's
revision keeps the batch "not drained"; a live instance that published no reading yet counts
the same way (it may route to the batch). etcd unreachable: `sums` is None and the tick waits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.channel import Stats
from proxy.fleet.counts import (
    Accumulator,
    BackendCount,
    CountsPublisher,
    InstanceCounts,
    Key,
    ReportLike,
    RouteCount,
    SumLike,
    from_telemetry,
    read_counts,
)
from proxy.fleet.etcd import EtcdError

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane
    from proxy.fleet.link import FleetLink

REFRESH = 0.25
"""How long the publisher waits for the workers' fresh counters (the controllers' tick)."""


@dataclass(frozen=True, slots=True)
class FleetSums:
    routes: Mapping[Key, RouteCount]
    backends: Mapping[Key, BackendCount]
    flights: Sequence[tuple[int, Mapping[Key, int]]]
    """Every other instance's (revision, in-flight per (pool, backend))."""


def live_keys(plane: ControlPlane) -> tuple[set[Key], set[str]]:
    """The (route, pool) pairs and the pools that live rollouts judge."""
    routes = {
        (rollout.route, pool)
        for rollout in plane.rollouts.values()
        if not rollout.final
        for pool in (rollout.new, rollout.baseline)
    }
    pools = {rollout.pool for rollout in plane.pool_rollouts.values() if not rollout.final}
    return routes, pools


class FleetCounts:
    """This instance's counts published to the fleet, and the fleet's summed for the leader."""

    @staticmethod
    def accumulator() -> Accumulator:
        """A new controller's (or a new leader's) totals: every instance starts at its next
        reading."""
        return Accumulator()

    def __init__(self, plane: ControlPlane, link: FleetLink) -> None:
        self.plane = plane
        self.link = link
        self._reports: list[Stats] = []
        self.publisher = CountsPublisher(
            link.client,
            link.prefix,
            link.instance,
            lambda: link.membership.lease,
            self._collect,
            refresh=self._refresh,
        )

    async def _refresh(self) -> None:
        if any(live_keys(self.plane)):
            self._reports = await self.plane.supervisor.query_stats(wait=REFRESH)

    def _collect(self) -> InstanceCounts | None:
        routes, pools = live_keys(self.plane)
        if not routes and not pools:
            return None  # no rollout: nothing to publish
        return self._reading(self.plane.telemetry.routes(), self.plane.telemetry.backends(), 0)

    def _reading(
        self,
        routes: Mapping[Key, SumLike],
        backends: Mapping[Key, ReportLike],
        revision: int,
    ) -> InstanceCounts:
        route_keys, pools = live_keys(self.plane)
        if not revision:
            revision = min((r.revision for r in self._reports), default=0)
        return from_telemetry(
            self.link.instance,
            routes,
            backends,
            time.time(),
            routes_of=route_keys,
            pools_of=pools,
            revision=revision,
        )

    async def sums(
        self,
        accumulator: Accumulator,
        routes: Mapping[Key, SumLike],
        backends: Mapping[Key, ReportLike],
        *,
        members: bool = False,
    ) -> FleetSums | None:
        """The fleet's totals with this instance's fresh `routes` and `backends`; `members`:
        also count a live instance with no reading yet as in flight. None: etcd away."""
        link = self.link
        try:
            readings = await read_counts(link.client, link.prefix)
            names = [m.instance for m in await link.membership.members()] if members else []
        except EtcdError:
            return None
        me = link.instance
        readings[me] = self._reading(routes, backends, self.plane.snapshot.revision)
        summed_routes, summed_backends = accumulator.fold(readings)
        flights: list[tuple[int, Mapping[Key, int]]] = [
            (reading.revision, {key: b.inflight for key, b in reading.backends.items()})
            for name, reading in readings.items()
            if name != me
        ]
        flights += [(0, {}) for name in names if name not in readings]
        return FleetSums(summed_routes, summed_backends, flights)
