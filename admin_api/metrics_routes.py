"""The per-(route, pool) families of /metrics, written as text (admin_api.metrics_text).

With traffic on every route these are the other big part of a large instance's /metrics (a
duration histogram of ~15 lines for each (route, pool)). The `pool="…",route="…"` label
strings are escaped once per routing snapshot; the counts are formatted per scrape. The keys
come from the workers' sums (a route removed since keeps its counters), sorted as before.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.utils import floatToGoString

from admin_api.metrics_text import TextFamily, label_value, number
from proxy.control.values import InstanceState
from router import Snapshot

Key = tuple[str, str]


class RouteFamilies:
    """Writes the route families of each scrape; keeps the label strings of the current
    snapshot's keys (and of the keys seen with it)."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._labels: dict[Key, str] = {}

    def collect(self, state: InstanceState) -> Iterator[TextFamily]:
        if self._snapshot is not state.snapshot:
            self._snapshot, self._labels = state.snapshot, {}
        routes = sorted(state.routes.items())
        labelled = [(self._label(key), total) for key, total in routes]
        requests, decisions, duration = [], [], []
        bounds = state.buckets
        # generate_latest's label order is by name: code < le < pool < route < rule.
        les = [f'le="{_bound(bound)}",' for bound in (*bounds, float("inf"))]
        # HistogramMetricFamily leaves out _count and _sum when the first bucket is negative.
        count_and_sum = (bounds[0] if bounds else float("inf")) >= 0
        for labels, total in labelled:
            for code, count in sorted(total.codes.items()):
                requests.append(
                    f'turnout_requests_total{{code="{code}",{labels}}} {number(count)}\n'
                )
            for rule, count in sorted(total.rules.items()):
                decisions.append(
                    f"turnout_routing_decisions_total{{{labels},rule="
                    f'"{label_value(rule)}"}} {number(count)}\n'
                )
            running = 0
            for le, count in zip(les, total.buckets, strict=True):
                running += count
                duration.append(
                    f"turnout_request_duration_seconds_bucket{{{le}{labels}}} {number(running)}\n"
                )
            if count_and_sum:
                duration.append(
                    f"turnout_request_duration_seconds_count{{{labels}}} {number(running)}\n"
                    f"turnout_request_duration_seconds_sum{{{labels}}} "
                    f"{floatToGoString(total.duration_sum)}\n"  # type: ignore[no-untyped-call]
                )
        yield TextFamily(
            "turnout_requests",
            "Requests answered, by route, pool and status code.",
            "counter",
            requests,
        )
        yield TextFamily(
            "turnout_routing_decisions",
            "Requests by the rule that routed them: header, cookie, weighted, active, "
            "no-route (no route matched, or answered before routing).",
            "counter",
            decisions,
        )
        yield TextFamily(
            "turnout_request_duration_seconds",
            "From routing to the end of the response.",
            "histogram",
            duration,
        )
        yield TextFamily(
            "turnout_requests_in_flight",
            "Requests being answered now.",
            "gauge",
            [
                f"turnout_requests_in_flight{{{labels}}} {number(total.inflight)}\n"
                for labels, total in labelled
            ],
        )
        yield TextFamily(
            "turnout_request_body_bytes",
            "Request body bytes from clients.",
            "counter",
            [
                f"turnout_request_body_bytes_total{{{labels}}} {number(total.bytes_in)}\n"
                for labels, total in labelled
            ],
        )
        yield TextFamily(
            "turnout_response_body_bytes",
            "Response body bytes to clients.",
            "counter",
            [
                f"turnout_response_body_bytes_total{{{labels}}} {number(total.bytes_out)}\n"
                for labels, total in labelled
            ],
        )
        # What the pool's backends did, where turnout_requests_total says what clients saw: a
        # retry can turn a failed attempt into a 200 (the failure still counts here).
        yield TextFamily(
            "turnout_upstream_attempts",
            "Upstream attempts begun (each backend picked for a request, retries included).",
            "counter",
            [
                f"turnout_upstream_attempts_total{{{labels}}} {number(total.attempts)}\n"
                for labels, total in labelled
            ],
        )
        yield TextFamily(
            "turnout_upstream_attempt_errors",
            "Upstream attempts that failed: connect failure, reset or close before a response "
            "head, response timeout, invalid response, or a status >= 500. Not 499s.",
            "counter",
            [
                f"turnout_upstream_attempt_errors_total{{{labels}}} {number(total.attempt_errors)}\n"
                for labels, total in labelled
            ],
        )

    def _label(self, key: Key) -> str:
        labels = self._labels.get(key)
        if labels is None:
            route, pool = key
            labels = self._labels[key] = f'pool="{label_value(pool)}",route="{label_value(route)}"'
        return labels


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
