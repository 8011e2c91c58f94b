"""/metrics' per-(route, pool) families, written as text (admin_api.metrics_routes), are byte for
byte what prometheus-client wrote from the family objects they replace (kept below as the
reference): label values that need escaping, several codes and rules, a retired route's keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from admin_api.exposition import render
from admin_api.metrics_routes import RouteFamilies
from proxy.control.values import InstanceState
from proxy.metrics import Sum
from router import Snapshot

ODD = 'q"uo\\te\nd'  # every character a label value escapes


def _state(snapshot: object, bounds: tuple[float, ...] = (0.005, 0.1, 2.5, 60.0)) -> InstanceState:
    def total(scale: int) -> Sum:
        return Sum(
            inflight=scale % 3,
            codes={502: scale, 200: 1000 * scale, 404: 7},
            rules={"weighted": 900 * scale, "cookie": 100 * scale, ODD: 1},
            buckets=[scale * (i + 1) for i in range(len(bounds) + 1)],
            duration_sum=0.1 * scale + 1e-7,
            bytes_in=scale << 30,
            bytes_out=scale << 40,
            attempts=1010 * scale,
            attempt_errors=scale,
        )

    routes = {
        ("web", "stable"): total(1),
        ("web", ODD): total(2),
        ("api", "stable"): total(3),
        ("retired-route", "old"): total(4),
    }
    return InstanceState(cast(Snapshot, snapshot), bounds, routes, {}, {}, (), 0)


class _Text(Collector):
    def __init__(self, state: InstanceState) -> None:
        self.families = RouteFamilies()
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self.families.collect(self.state)


class _Reference(Collector):
    """admin_api.metrics' route families as prometheus-client objects, before the text."""

    def __init__(self, state: InstanceState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
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
            attempts.add_metric([route, pool], total.attempts)
            errors.add_metric([route, pool], total.attempt_errors)
        yield from (requests, decisions, duration, inflight, received, sent, attempts, errors)


def _registry(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def test_text_families_are_the_reference_byte_for_byte() -> None:
    state = _state(object())
    expected = generate_latest(_registry(_Reference(state)))
    assert b'pool="q\\"uo\\\\te\\nd"' in expected  # the names did need escaping
    assert render(_registry(_Text(state))) == expected


def test_other_bucket_bounds_and_no_traffic() -> None:
    for bounds in ((), (1.0, 1e9), (-1.0, 1.0)):  # a negative first bound: no _count, _sum
        state = _state(object(), bounds)
        assert render(_registry(_Text(state))) == generate_latest(_registry(_Reference(state)))
    quiet = InstanceState(cast(Snapshot, object()), (0.1,), {}, {}, {}, (), 0)
    assert render(_registry(_Text(quiet))) == generate_latest(_registry(_Reference(quiet)))


def test_a_new_snapshot_writes_the_labels_again() -> None:
    text = _Text(_state(object()))
    render(_registry(text))
    text.state = _state(object())  # another snapshot, the same keys
    assert render(_registry(text)) == generate_latest(_registry(_Reference(text.state)))


def test_other_readers_get_the_samples_parsed_back() -> None:
    state = _state(object())
    text = generate_latest(_registry(_Text(state)))
    assert text == generate_latest(_registry(_Reference(state)))
