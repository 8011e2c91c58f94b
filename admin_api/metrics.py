"""GET /metrics: the whole instance in Prometheus text (admin_api.exposition writes it).

Workers push their counters to the control plane, which sums them (dead workers included); this
collector turns the control service's `instance()` value (those sums, the current snapshot, the
health checker's counters, the workers) into metric families at scrape time. The big families,
per backend and per (route, pool), are written as text directly (admin_api.metrics_backends,
admin_api.metrics_routes: 2,000 backends made ~35,000 prometheus-client samples a scrape); the
small ones stay prometheus-client families. One registry per application also carries the
standard process, platform and garbage-collector collectors (of the control plane process), plus
each worker's CPU time and memory read from /proc. Label values are configuration names and
status codes only: a request's path or cookie can never become a label.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from admin_api.metrics_backends import BackendFamilies
from admin_api.metrics_routes import RouteFamilies
from admin_api.rollout_metrics import pool_rollout_families, rollout_families
from proxy import native
from proxy.control import ControlService
from proxy.control.values import InstanceState


def registry(service: ControlService) -> CollectorRegistry:
    metrics = CollectorRegistry(auto_describe=False)
    metrics.register(InstanceCollector(service))
    ProcessCollector(registry=metrics)
    PlatformCollector(registry=metrics)
    GCCollector(registry=metrics)
    return metrics


class InstanceCollector(Collector):
    def __init__(self, service: ControlService) -> None:
        self.service = service
        self._backends = BackendFamilies()
        self._route_families = RouteFamilies()

    def collect(self) -> Iterator[Metric]:
        state = self.service.instance()
        yield from self._route_families.collect(state)
        yield from self._backends.collect(state)
        yield from self._routes(state)
        yield from self._workers(state)
        yield from rollout_families(self.service.rollouts(), self.service.rollout_aborts())
        yield from pool_rollout_families(
            self.service.pool_rollouts(), self.service.pool_rollout_aborts()
        )
        yield self._build_info()

    def _routes(self, state: InstanceState) -> Iterator[Metric]:
        snapshot = state.snapshot
        revision = GaugeMetricFamily("turnout_revision", "The routing state's revision.")
        revision.add_metric([], snapshot.revision)
        weight = GaugeMetricFamily(
            "turnout_route_weight",
            "Set weight of each pool of a weighted route.",
            labels=["route", "pool"],
        )
        active = GaugeMetricFamily(
            "turnout_route_active",
            "1 for a blue-green route's active colour.",
            labels=["route", "pool"],
        )
        for route in snapshot.spec.routes:
            for pool, value in route.weights:
                weight.add_metric([route.name, pool], value)
            for colour in route.colours:
                active.add_metric([route.name, colour], int(colour == route.active))
        yield from (revision, weight, active)

    def _workers(self, state: InstanceState) -> Iterator[Metric]:
        workers = GaugeMetricFamily("turnout_workers", "Worker processes serving now.")
        workers.add_metric([], sum(1 for worker in state.workers if worker.serving))
        crashes = CounterMetricFamily(
            "turnout_worker_crashes", "Worker processes that died and were restarted."
        )
        crashes.add_metric([], state.crashes)
        cpu = CounterMetricFamily(
            "turnout_worker_cpu_seconds",
            "CPU time of each worker process.",
            labels=["worker"],
            unit="seconds",
        )
        memory = GaugeMetricFamily(
            "turnout_worker_resident_memory_bytes",
            "Resident memory of each worker process.",
            labels=["worker"],
            unit="bytes",
        )
        for worker in state.workers:
            usage = _proc_usage(worker.pid) if worker.live else None
            if usage is not None:
                cpu.add_metric([str(worker.id)], usage[0])
                memory.add_metric([str(worker.id)], usage[1])
        yield from (workers, crashes, cpu, memory)

    def _build_info(self) -> Metric:
        # The `*_build_info` convention: a constant 1 whose labels say what runs, so a dashboard
        # can show that an instance runs the slower pure-Python data plane.
        info = GaugeMetricFamily(
            "turnout_build_info",
            "What this turnout runs: its version and whether the hot path is compiled.",
            labels=["version", "data_plane"],
        )
        info.add_metric([_VERSION, "compiled" if native.state == "compiled" else "python"], 1)
        return info


_VERSION = importlib.metadata.version("turnout")

_TICKS = 100.0  # USER_HZ, fixed at 100 on Linux for /proc/<pid>/stat
_PAGE = 4096


def _proc_usage(pid: int) -> tuple[float, int] | None:
    """CPU seconds and resident bytes of a process, from /proc (None if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return cpu, int(statm.split()[1]) * _PAGE
