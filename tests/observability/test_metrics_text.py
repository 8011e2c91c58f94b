"""/metrics' per-backend families, written as text (admin_api.metrics_backends), are byte for
byte what prometheus-client wrote from the family objects they replace (kept below as the
reference), over telemetry whose names need escaping, partial reports and a changing snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from admin_api.exposition import render
from admin_api.metrics_backends import BackendFamilies
from proxy.control.values import HealthCounters, InstanceState
from proxy.metrics import BackendReport
from router import Snapshot, build_snapshot
from router.spec import AdminState, BackendSpec, PoolSpec, RouteSpec, Spec

ODD = 'q"uo\\te\nd'  # every character a label value escapes; config names never hold them


@dataclass(frozen=True)
class _Backend:
    name: str
    health: str
    weight: int
    admin_state: str


@dataclass(frozen=True)
class _Pool:
    name: str
    panic: bool
    backends: tuple[_Backend, ...]
    eligible: tuple[_Backend, ...]


@dataclass(frozen=True)
class _Snapshot:
    """A snapshot's pools as the families read them, with "odd" renamed to ODD (which a
    configuration refuses: label values are escaped all the same)."""

    pools: dict[str, _Pool]

    @classmethod
    def of(cls, snapshot: Snapshot) -> Snapshot:
        def odd(name: str) -> str:
            return ODD if name == "odd" else name

        def backend(real: Any) -> _Backend:
            return _Backend(odd(real.name), real.health, real.weight, real.admin_state)

        pools = {
            odd(name): _Pool(
                odd(pool.name),
                pool.panic,
                tuple(backend(b) for b in pool.backends),
                tuple(backend(b) for b in pool.eligible),
            )
            for name, pool in snapshot.pools.items()
        }
        return cast(Snapshot, cls(pools))


def _state(admin_state: AdminState = "ready") -> InstanceState:
    pools = (
        PoolSpec(
            "stable",
            (BackendSpec("s1", "127.0.0.1", 8001, 3, admin_state), BackendSpec("odd", "h", 8002)),
        ),
        PoolSpec("odd", (BackendSpec("c1", "127.0.0.1", 8003, weight=0),), panic_threshold=100),
        PoolSpec("empty-reports", (BackendSpec("e1", "127.0.0.1", 8004),)),
    )
    route = RouteSpec("web", weights=(("stable", 90), ("odd", 10)))
    snapshot = build_snapshot(
        Spec(pools, (route,)), health={("stable", "odd"): "unhealthy", ("odd", "c1"): "unhealthy"}
    )
    reports = {
        ("stable", "s1"): BackendReport(2, 1, 0, 3, 4, 123456789, 7),
        ("stable", ODD): BackendReport(0, 5, 1, 0, 0),
        (ODD, "c1"): BackendReport(1, 0, 0, 0, 2, 10**18, 1),
        ("gone", "x"): BackendReport(1, 1, 1, 1, 1),  # a retired pool's: not shown
    }
    health = {
        ("stable", "s1"): HealthCounters(0, 0, True, 3600, 0),
        ("stable", ODD): HealthCounters(2, 1, True, 10, 20),
        (ODD, "c1"): HealthCounters(1, 0, False, 0, 0),
    }
    return InstanceState(_Snapshot.of(snapshot), (0.1, 1.0), {}, reports, health, (), 0)


class _Text(Collector):
    def __init__(self) -> None:
        self.families = BackendFamilies()
        self.state = _state()

    def collect(self) -> Iterator[Metric]:
        yield from self.families.collect(self.state)


class _Reference(Collector):
    """admin_api.metrics' per-backend families as prometheus-client objects, before the text."""

    def __init__(self, state: InstanceState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        reports = state.backends

        def gauge(name: str, help_text: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_text, labels=["pool", "backend", *extra])

        def counter(name: str, help_text: str, *extra: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, help_text, labels=["pool", "backend", *extra])

        up = gauge("turnout_backend_up", "1: healthy (probes pass, not ejected).")
        eligible = gauge("turnout_backend_eligible", "1: takes new requests.")
        admin = gauge("turnout_backend_admin_state", "1 for the backend's admin state.", "state")
        weight = gauge("turnout_backend_weight", "Weight in its pool.")
        inflight = gauge(
            "turnout_backend_requests_in_flight", "Requests in flight (WebSockets included)."
        )
        connections = gauge(
            "turnout_upstream_connections", "Upstream connections open (idle or busy)."
        )
        errors = counter("turnout_upstream_connect_errors", "Failed connects to the backend.")
        timeouts = counter(
            "turnout_upstream_timeouts", "Responses not started within read_timeout."
        )
        retries = counter(
            "turnout_upstream_retries", "Requests retried elsewhere after failing here."
        )
        attempts = counter(
            "turnout_backend_attempts", "Upstream attempts sent to the backend (retries included)."
        )
        attempt_errors = counter(
            "turnout_backend_attempt_errors",
            "Upstream attempts to the backend that failed, by the rules of "
            "turnout_upstream_attempt_errors_total.",
        )
        ejections = counter(
            "turnout_backend_ejections", "Times taken out of rotation, by reason.", "reason"
        )
        probes = counter("turnout_health_probes", "Active health probes, by result.", "result")
        panic = GaugeMetricFamily(
            "turnout_pool_panic", "1: the pool is in panic mode.", labels=["pool"]
        )
        for pool in state.snapshot.pools.values():
            panic.add_metric([pool.name], int(pool.panic))
            routable = {backend.name for backend in pool.eligible}
            for backend in pool.backends:
                labels = [pool.name, backend.name]
                up.add_metric(labels, int(backend.health == "healthy"))
                eligible.add_metric(labels, int(backend.name in routable))
                weight.add_metric(labels, backend.weight)
                for admin_state in ("ready", "drain", "maint"):
                    admin.add_metric(
                        [*labels, admin_state], int(backend.admin_state == admin_state)
                    )
                report = reports.get((pool.name, backend.name))
                if report is not None:
                    inflight.add_metric(labels, report.inflight)
                    connections.add_metric(labels, report.connections)
                    errors.add_metric(labels, report.connect_errors)
                    timeouts.add_metric(labels, report.timeouts)
                    retries.add_metric(labels, report.retries)
                    attempts.add_metric(labels, report.attempts)
                    attempt_errors.add_metric(labels, report.attempt_errors)
                health = state.health.get((pool.name, backend.name))
                if health is not None:
                    ejections.add_metric([*labels, "probe"], health.ejected_by_probes)
                    ejections.add_metric([*labels, "outlier"], health.ejected_by_outliers)
                    if health.checked:
                        probes.add_metric([*labels, "ok"], health.probes_ok)
                        probes.add_metric([*labels, "failed"], health.probes_failed)
        yield from (up, eligible, admin, weight, inflight, connections, errors, timeouts)
        yield from (retries, attempts, attempt_errors, ejections, probes, panic)


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def test_text_families_are_the_reference_byte_for_byte() -> None:
    text = _Text()
    expected = generate_latest(_registry(_Reference(text.state)))
    assert b'backend="q\\"uo\\\\te\\nd"' in expected  # the names did need escaping
    assert render(_registry(text)) == expected


def test_a_new_snapshot_is_written_again_and_the_same_one_is_reused() -> None:
    text = _Text()
    render(_registry(text))
    layout = text.families._layout
    render(_registry(text))
    assert text.families._layout is layout  # the same snapshot: its lines are kept
    text.state = _state(admin_state="drain")
    expected = generate_latest(_registry(_Reference(text.state)))
    assert b'turnout_backend_admin_state{backend="s1",pool="stable",state="drain"} 1.0' in expected
    assert render(_registry(text)) == expected


def test_other_readers_get_the_samples_parsed_back() -> None:
    # generate_latest reads `samples`, which a TextFamily parses from its lines on demand.
    text = _Text()
    assert generate_latest(_registry(text)) == generate_latest(_registry(_Reference(text.state)))
