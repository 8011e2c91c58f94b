"""What a worker counts, cheaply, on the hot path; the control plane sums and exposes it.

Theory of operation. Counters live in plain Python objects, one `RouteStats` per (route, pool)
and counters on each backend's `Target`, created once and kept across snapshots (so they only
ever grow). A request touches its RouteStats a handful of times: no dict of labels is built, no
lock taken, no prometheus-client object involved. Every second (and when asked) the worker sends
`report()` to the control plane, which adds the reports of all workers (and of workers that
died) and renders Prometheus text (admin_api.metrics).

Label values come only from configuration names (route, pool, backend, the closed set of rule
kinds) and status codes: never from request data, so no client can add a series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

NO_ROUTE: Final = "(none)"
"""Route and pool label of requests answered before routing (malformed, no route)."""

NOT_ROUTED: Final = "no-route"
"""Rule label of requests answered before routing: the router's own word for a request no route
matches (router.decide.NO_ROUTE), so a malformed request, which never reaches the router, is
counted in the same documented closed set of rules."""


class RouteStats:
    """Requests of one (route, pool): by status, by routing rule, their durations and bytes;
    and the upstream attempts made for them, with the attempts that failed.

    `attempts` and `attempt_errors` count what the pool's backends did, not what the client
    saw (a retry may hide a failed attempt from it): an attempt begins each time a backend is
    picked for the request (proxy.selection.forward), and fails when the connect fails, the
    backend closes or resets before a complete response head, the response does not come within
    read_timeout, the response is not HTTP, or its head has a status >= 500. Not failures: the
    client giving up (499), a stale pooled connection retried at once (the retry on a fresh
    connection is the same attempt: only its outcome counts), the client's own body timeout, and
    503s for a pool without an eligible backend (no attempt began). Counted under the (route,
    pool) the request is counted under at that moment, and at the same places, by the same
    rules, on the attempt's backend (dataplane.Target: the target picked for it)."""

    __slots__ = (
        "attempt_errors",
        "attempts",
        "bounds",
        "buckets",
        "bytes_in",
        "bytes_out",
        "duration_sum",
        "inflight",
        "last_code",
        "last_count",
        "last_rule",
        "pool",
        "route",
        "settled_codes",
        "settled_rules",
    )

    def __init__(self, route: str, pool: str, bounds: tuple[float, ...]) -> None:
        self.route = route
        self.pool = pool
        self.bounds = bounds
        self.inflight = 0
        self.settled_codes: dict[int, int] = {}
        self.settled_rules: dict[str, int] = {}
        # Nearly every request of a (route, pool) ends with the status and the rule of the one
        # before it: those are counted in a plain int, added to the dicts (two boxed ints, two
        # hashes, two stores per request otherwise) only when another (status, rule) comes, or
        # when they are read (the `codes` and `rules` properties).
        self.last_code = 0
        self.last_rule = ""
        self.last_count = 0
        self.buckets = [0] * (len(bounds) + 1)
        """Per bucket (not cumulative); the last one is above the highest bound."""
        self.duration_sum = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.attempts = 0
        self.attempt_errors = 0

    @property
    def codes(self) -> dict[int, int]:
        """Requests by status."""
        self.settle()
        return self.settled_codes

    @property
    def rules(self) -> dict[str, int]:
        """Requests by routing rule."""
        self.settle()
        return self.settled_rules

    def settle(self) -> None:
        """Add the requests counted under the last (status, rule) to the dicts."""
        count = self.last_count
        if count:
            self.last_count = 0
            codes, rules = self.settled_codes, self.settled_rules
            codes[self.last_code] = codes.get(self.last_code, 0) + count
            rules[self.last_rule] = rules.get(self.last_rule, 0) + count

    def finished(self, status: int, rule: str, duration: float) -> None:
        if status != self.last_code or rule != self.last_rule:
            self.settle()
            self.last_code = status
            self.last_rule = rule
        self.last_count += 1
        # "le" buckets: a duration equal to a bound belongs to that bound's bucket. A loop, not
        # bisect: compiled, a dozen float comparisons cost less than one call to bisect_left.
        index = 0
        for bound in self.bounds:
            if duration <= bound:
                break
            index += 1
        self.buckets[index] += 1
        self.duration_sum += duration

    def report(self) -> RouteReport:
        return RouteReport(
            inflight=self.inflight,
            codes=dict(self.codes),
            rules=dict(self.rules),
            buckets=tuple(self.buckets),
            duration_sum=self.duration_sum,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            attempts=self.attempts,
            attempt_errors=self.attempt_errors,
        )


@dataclass(frozen=True, slots=True)
class RouteReport:
    inflight: int
    codes: dict[int, int]
    rules: dict[str, int]
    buckets: tuple[int, ...]
    duration_sum: float
    bytes_in: int
    bytes_out: int
    attempts: int = 0
    """Upstream attempts begun (RouteStats.attempts)."""
    attempt_errors: int = 0
    """Upstream attempts that failed (RouteStats.attempt_errors)."""

    @property
    def requests(self) -> int:
        return sum(self.codes.values())

    def __reduce__(self) -> tuple[type[RouteReport], tuple[object, ...]]:
        # Reports cross the worker -> control channel pickled. Compiled (mypyc) frozen
        # dataclasses refuse pickle's default field-by-field restore; a constructor call works
        # in both builds.
        return RouteReport, (
            self.inflight,
            self.codes,
            self.rules,
            self.buckets,
            self.duration_sum,
            self.bytes_in,
            self.bytes_out,
            self.attempts,
            self.attempt_errors,
        )


@dataclass(frozen=True, slots=True)
class BackendReport:
    inflight: int
    connect_errors: int
    timeouts: int
    retries: int
    """Requests retried elsewhere after failing on this backend."""
    connections: int
    """Upstream connections open now (idle in the pool or busy)."""
    attempts: int = 0
    """Upstream attempts sent to this backend (RouteStats.attempts' rules, per backend)."""
    attempt_errors: int = 0
    """Of those, the ones that failed (RouteStats.attempt_errors' rules)."""

    def __reduce__(self) -> tuple[type[BackendReport], tuple[object, ...]]:
        # As RouteReport.__reduce__: picklable when compiled.
        return BackendReport, (
            self.inflight,
            self.connect_errors,
            self.timeouts,
            self.retries,
            self.connections,
            self.attempts,
            self.attempt_errors,
        )


@dataclass(slots=True)
class Sum:
    """Route reports added up (over workers, live and retired)."""

    inflight: int = 0
    codes: dict[int, int] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=list)
    duration_sum: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    attempts: int = 0
    attempt_errors: int = 0

    def add(self, report: RouteReport, counters_only: bool = False) -> None:
        if not counters_only:
            self.inflight += report.inflight
        for code, count in report.codes.items():
            self.codes[code] = self.codes.get(code, 0) + count
        for rule, count in report.rules.items():
            self.rules[rule] = self.rules.get(rule, 0) + count
        if not self.buckets:
            self.buckets = [0] * len(report.buckets)
        for index, count in enumerate(report.buckets):
            self.buckets[index] += count
        self.duration_sum += report.duration_sum
        self.bytes_in += report.bytes_in
        self.bytes_out += report.bytes_out
        self.attempts += report.attempts
        self.attempt_errors += report.attempt_errors

    def add_sum(self, other: Sum) -> None:
        self.inflight += other.inflight
        for code, count in other.codes.items():
            self.codes[code] = self.codes.get(code, 0) + count
        for rule, count in other.rules.items():
            self.rules[rule] = self.rules.get(rule, 0) + count
        if not self.buckets:
            self.buckets = [0] * len(other.buckets)
        for index, count in enumerate(other.buckets):
            self.buckets[index] += count
        self.duration_sum += other.duration_sum
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.attempts += other.attempts
        self.attempt_errors += other.attempt_errors

    @property
    def requests(self) -> int:
        return sum(self.codes.values())
