"""Fleet mode on /metrics: leadership, the writes that lost a race or found etcd away, and the
writes answered before every instance applied them. Nothing in file mode (one instance)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.control import ControlService


class FleetCollector(Collector):
    def __init__(self, service: ControlService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        counters = self.service.fleet_counters()
        if counters is None:
            return
        leader = GaugeMetricFamily(
            "turnout_fleet_leader", "1 while this instance is the fleet's rollout leader."
        )
        leader.add_metric([], 1.0 if counters.leader else 0.0)
        conflicts = CounterMetricFamily(
            "turnout_fleet_write_conflicts",
            "Writes whose etcd transaction lost to another instance's (the step was then "
            "computed again from the newer state).",
        )
        conflicts.add_metric([], counters.write_conflicts)
        unavailable = CounterMetricFamily(
            "turnout_fleet_etcd_unavailable",
            "Reads and writes of the fleet's state that found etcd unreachable (a write then "
            "answers 503 and changes nothing).",
        )
        unavailable.add_metric([], counters.etcd_unavailable)
        lagging = CounterMetricFamily(
            "turnout_fleet_write_lagging",
            "Writes answered 504: made, but not applied by every live instance in time.",
        )
        lagging.add_metric([], counters.write_lagging)
        yield from (leader, conflicts, unavailable, lagging)
