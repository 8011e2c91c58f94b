"""The dashboard's figures over time: per-second series of the last minute per (route, pool),
and each rollout's evidence over its run. Pure: the caller brings the clock and the counters.

Theory of operation. The event producer (admin_api.events) calls `Series.update(now, counters)`
about once a second with every (route, pool)'s cumulative counters (requests, 5xx answers,
requests per duration bucket), which only grow: proxy.telemetry keeps a departed worker's last
report. Each call turns the differences since the call before into per-second points, appended
to a ring of the last `length` seconds per key; all rings end at the same moment (the last call),
a key first seen later is padded at the front. Invariants:
- a call `elapsed` seconds after the last adds round(elapsed) points (at least one), sharing
  the differences evenly: a late tick is spread over the seconds it covers instead of counted
  as one, and a point's rate is its share over the time it covers (1.4 s with 14 requests: one
  point, 10/s), while the window's totals are the exact differences;
- a call after more than a ring's worth of seconds (a producer stopped while no one watched)
  fills the ring with the average over the whole gap: the window holds a window's share;
- the first call, and one after the bucket bounds changed (a reload), only set the baseline;
- a counter that went backwards counts as no requests (never a negative rate).
A key's view: requests per second (oldest first, padded with zeros), the error rate per second
(None for a second without requests), the minute's requests and errors, and p50/p99 estimated
from the minute's bucket differences as Prometheus' histogram_quantile does.

`EvidenceHistory` keeps each rollout's evidence (the judge's e-values) as [time, errors,
latency] points while it runs, at most `limit` per run: when full, every other point is dropped
and points are taken half as often, so the whole run stays in view at a coarser grain. A new
run of the same rollout (another `started`) starts a new history; a finished run gets its final
point once and then no more; a rollout no longer listed is forgotten.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from itertools import repeat

from proxy.control.values import RouteCounters, RouteCounts

Key = tuple[str, str]

LENGTH = 60
"""Seconds in a series: the dashboard's "last minute"."""

EVIDENCE_POINTS = 300


@dataclass(frozen=True, slots=True)
class Point:
    """About a second of a (route, pool): requests and 5xx answers, and requests per duration
    bucket (the last one +Inf), over `seconds`. Shares, so fractions when an interval was
    spread."""

    requests: float
    errors: float
    buckets: tuple[float, ...]
    seconds: float


@dataclass(frozen=True, slots=True)
class SeriesView:
    rps: tuple[float, ...]
    """Requests per second, oldest first, one per second."""
    error_rate: tuple[float | None, ...]
    """Share of each second's requests answered >= 500; None for a second without any."""
    p50: float | None
    """Seconds; None without requests in the window."""
    p99: float | None
    requests: int
    """Over the window."""
    errors: int


class Series:
    def __init__(self, length: int = LENGTH) -> None:
        self.length = length
        self._bounds: tuple[float, ...] | None = None
        self._at: float | None = None
        self._last: Mapping[Key, RouteCounts] = {}
        self._rings: dict[Key, deque[Point]] = {}

    def update(self, now: float, counters: RouteCounters) -> None:
        """Add the seconds since the last update (`now`: a monotonic clock, in seconds)."""
        if self._at is None or counters.bounds != self._bounds:
            self._bounds = counters.bounds
            self._at = now
            self._last = counters.routes
            self._rings.clear()
            return
        elapsed = now - self._at
        if elapsed <= 0:
            return
        steps = max(1, round(elapsed))
        if steps > self.length:  # the average over the gap, for the ring's seconds only
            steps, seconds, share = self.length, 1.0, 1.0 / elapsed
        else:
            seconds, share = elapsed / steps, 1.0 / steps
        width = len(counters.bounds) + 1
        idle = Point(0.0, 0.0, (0.0,) * width, seconds)
        for key in self._rings.keys() - counters.routes.keys():
            self._rings[key].extend(repeat(idle, steps))
        for key, counts in counters.routes.items():
            point = _share(counts, self._last.get(key), share, seconds, width)
            ring = self._rings.get(key)
            if ring is None:
                ring = self._rings[key] = deque(maxlen=self.length)
            ring.extend(repeat(point, steps))
        self._at = now
        self._last = counters.routes

    def view(self, keep: Collection[Key] = ()) -> dict[Key, SeriesView]:
        """Every key in `keep` (all zeros if it never had a request) and every other key with
        requests in the window (a route removed a moment ago still shows its last minute)."""
        bounds = self._bounds or ()
        views = {}
        for key in sorted({*keep, *self._rings}):
            ring = self._rings.get(key, ())
            if key not in keep and not any(point.requests for point in ring):
                continue
            views[key] = self._view(ring, bounds)
        return views

    def _view(self, ring: Collection[Point], bounds: tuple[float, ...]) -> SeriesView:
        pad = self.length - len(ring)
        buckets = [0.0] * (len(bounds) + 1)
        for point in ring:
            for index, count in enumerate(point.buckets):
                buckets[index] += count
        return SeriesView(
            rps=(0.0,) * pad + tuple(round(point.requests / point.seconds, 3) for point in ring),
            error_rate=(None,) * pad
            + tuple(
                round(point.errors / point.requests, 4) if point.requests > 0 else None
                for point in ring
            ),
            p50=quantile(0.5, bounds, buckets),
            p99=quantile(0.99, bounds, buckets),
            requests=round(sum(point.requests for point in ring)),
            errors=round(sum(point.errors for point in ring)),
        )


def _share(
    counts: RouteCounts, before: RouteCounts | None, share: float, seconds: float, width: int
) -> Point:
    if before is None or len(before.buckets) != len(counts.buckets):
        before = RouteCounts(0, 0, (0,) * len(counts.buckets))
    buckets = tuple(
        max(0, now - then) * share for now, then in zip(counts.buckets, before.buckets, strict=True)
    )
    return Point(
        requests=max(0, counts.requests - before.requests) * share,
        errors=max(0, counts.errors - before.errors) * share,
        buckets=buckets if len(buckets) == width else (0.0,) * width,
        seconds=seconds,
    )


def quantile(q: float, bounds: tuple[float, ...], buckets: list[float]) -> float | None:
    """The q-quantile of a histogram (requests per bucket, the last +Inf), in seconds: linear
    inside the bucket it falls in, from 0 for the first; in +Inf, the largest finite bound
    (Prometheus' histogram_quantile). None for an empty histogram."""
    total = sum(buckets)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    below = 0.0
    for index, count in enumerate(buckets):
        if count > 0 and below + count >= rank:
            if index == len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index else 0.0
            return round(lower + (bounds[index] - lower) * (rank - below) / count, 6)
        below += count
    return bounds[-1]  # rounding left the rank a hair above the total


@dataclass(frozen=True, slots=True)
class EvidenceSample:
    """A rollout's evidence now, as the judge has it."""

    started: float
    """When this run of the rollout started: another value starts another history."""
    live: bool
    """Progressing or paused (False: finished)."""
    errors: float
    latency: float | None
    """None for a judge without a latency test (a pool rollout's)."""


EvidencePoint = tuple[float, float, float | None]
"""[epoch seconds, errors evidence, latency evidence or None]."""


@dataclass(slots=True)
class _Run:
    started: float
    points: list[EvidencePoint] = field(default_factory=list)
    stride: int = 1
    ticks: int = 0
    closed: bool = False


class EvidenceHistory:
    def __init__(self, limit: int = EVIDENCE_POINTS) -> None:
        self.limit = limit
        self._runs: dict[str, _Run] = {}

    def record(self, now: float, samples: Mapping[str, EvidenceSample]) -> None:
        """One tick: `samples` by key (`route/<name>`, `pool/<name>`), `now` in epoch seconds."""
        for key in self._runs.keys() - samples.keys():
            del self._runs[key]
        for key, sample in samples.items():
            run = self._runs.get(key)
            if run is None or run.started != sample.started:
                run = self._runs[key] = _Run(sample.started)
            if run.closed:
                continue
            point = (round(now, 3), sample.errors, sample.latency)
            if not sample.live:
                self._make_room(run)
                run.points.append(point)  # the verdict's evidence, once
                run.closed = True
                continue
            if run.ticks % run.stride == 0:
                self._make_room(run)
                if run.ticks % run.stride == 0:
                    run.points.append(point)
            run.ticks += 1

    def _make_room(self, run: _Run) -> None:
        if len(run.points) >= self.limit:
            run.points = run.points[::2]
            run.stride *= 2

    def view(self) -> dict[str, list[EvidencePoint]]:
        return {key: list(run.points) for key, run in sorted(self._runs.items())}
