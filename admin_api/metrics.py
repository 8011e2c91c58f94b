"""GET /metrics: the whole instance in Prometheus text, rendered by prometheus-client.

Workers push their counters to the control plane, which sums them (dead workers included); this
collector turns the control service's `instance()` value (those sums, the current snapshot, the
health checker's counters, the workers) into metric families at scrape time. One registry per application also carries the standard
process, platform and garbage-collector collectors (of the control plane process), plus each
worker's CPU time and memory read from /proc. Label values are configuration names and status
codes only: a request's path or cookie can never become a label.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from admin_api.metrics_backends import BackendFamilies
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

    def collect(self) -> Iterator[Metric]:
        state = self.service.instance()
        yield from self._requests(state)
        yield from self._attempts(state)
        yield from self._backends.collect(state)
        yield from self._routes(state)
        yield from self._workers(state)
        yield from rollout_families(self.service.rollouts(), self.service.rollout_aborts())
        yield from pool_rollout_families(
            self.service.pool_rollouts(), self.service.pool_rollout_aborts()
        )
        yield self._build_info()

    def _requests(self, state: InstanceState) -> Iterator[Metric]:
        routes = state.routes
        bounds = state.buckets
        requests = CounterMetricFamily(
            "turnout_requests",
            "Requests answered, by route, pool and status code.",
            labels=["route", "pool", "code"],
        )
        decisions = CounterMetricFamily(
            "turnout_routing_decisions",
            "Requests by the rule that routed them: header, cookie, weighted, active, "
            "no-route (no route matched, or answered before routing).",
            labels=["route", "rule", "pool"],
        )
        duration = HistogramMetricFamily(
            "turnout_request_duration_seconds",
            "From routing to the end of the response.",
            labels=["route", "pool"],
            unit="seconds",
        )
        inflight = GaugeMetricFamily(
            "turnout_requests_in_flight", "Requests being answered now.", labels=["route", "pool"]
        )
        received = CounterMetricFamily(
            "turnout_request_body_bytes",
            "Request body bytes from clients.",
            labels=["route", "pool"],
        )
        sent = CounterMetricFamily(
            "turnout_response_body_bytes",
            "Response body bytes to clients.",
            labels=["route", "pool"],
        )
        for (route, pool), total in sorted(routes.items()):
            for code, count in sorted(total.codes.items()):
                requests.add_metric([route, pool, str(code)], count)
            for rule, count in sorted(total.rules.items()):
                decisions.add_metric([route, rule, pool], count)
            cumulative, running = [], 0
            for bound, count in zip((*bounds, float("inf")), total.buckets, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
            duration.add_metric([route, pool], cumulative, total.duration_sum)
            inflight.add_metric([route, pool], total.inflight)
            received.add_metric([route, pool], total.bytes_in)
            sent.add_metric([route, pool], total.bytes_out)
        yield from (requests, decisions, duration, inflight, received, sent)

    def _attempts(self, state: InstanceState) -> Iterator[Metric]:
        # What the pool's backends did, where turnout_requests_total says what clients saw: a
        # retry can turn a failed attempt into a 200 (the failure still counts here).
        attempts = CounterMetricFamily(
            "turnout_upstream_attempts",
            "Upstream attempts begun (each backend picked for a request, retries included).",
            labels=["route", "pool"],
        )
        errors = CounterMetricFamily(
            "turnout_upstream_attempt_errors",
            "Upstream attempts that failed: connect failure, reset or close before a response "
            "head, response timeout, invalid response, or a status >= 500. Not 499s.",
            labels=["route", "pool"],
        )
        for (route, pool), total in sorted(state.routes.items()):
            attempts.add_metric([route, pool], total.attempts)
            errors.add_metric([route, pool], total.attempt_errors)
        yield from (attempts, errors)

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
