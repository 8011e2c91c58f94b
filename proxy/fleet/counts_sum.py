"""The fleet's counts added up for the rollout leader's judge (pure: no I/O, no clock).

Theory of operation. Every instance publishes its own lifetime counters (attempts, failed
attempts, latency buckets per (route, pool); attempts, failed attempts, in-flight per
(pool, backend)) under its lease. The leader reads them all and folds them into totals that
look, to the controllers, exactly like one instance's telemetry did: counters that only grow,
so the controllers' own "increment since my last reading" logic is unchanged.

`Accumulator.fold` keeps each instance's last reading per key and adds the increments:

- An instance's first reading of a key is its baseline: it adds nothing. An instance that joins
  mid-rollout (or a key that appears later, e.g. a rollout whose route was filtered out until
  now) must not add its lifetime counters at once, which the judge would read as one burst.
- The increment is now - last per counter. Any counter lower than before means the instance
  restarted (its counters start again): that reading is a new baseline, never a negative.
- A bucket tuple of another length (the histogram's bounds changed) is a new baseline for the
  key. An empty tuple means "no histogram yet" and counts as zeros of any length.
- An instance (or key) missing from a fold (its lease expired) keeps what it added and adds
  nothing more; its next reading is a new baseline (the lease may have expired across a restart).
- `inflight` is a gauge, not a counter: its total is the sum over the current readings only.

The totals' bucket length is the one the fleet reports: it changes only when no current reading
still reports the old length (a fleet moved to new bounds), and then the key's buckets start
again at zero (proxy.control.rollout.counts.PoolCounts.minus takes a length change as a restart).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RouteCount:
    """What the route judge reads of one (route, pool): attribute names as proxy.metrics.Sum."""

    attempts: int = 0
    attempt_errors: int = 0
    buckets: tuple[int, ...] = ()
    """Latency histogram, per bucket (not cumulative)."""


@dataclass(frozen=True, slots=True)
class BackendCount:
    """What the pool judge reads of one (pool, backend)."""

    attempts: int = 0
    attempt_errors: int = 0
    inflight: int = 0


@dataclass(frozen=True, slots=True)
class InstanceCounts:
    """One instance's reading: lifetime counters at wall-clock time `at`."""

    instance: str
    at: float
    routes: Mapping[Key, RouteCount] = field(default_factory=dict)
    backends: Mapping[Key, BackendCount] = field(default_factory=dict)
    revision: int = 0
    """The oldest revision any of its workers routed by when read: its in-flight counts say
    nothing about requests routed before that revision's change (0: unknown)."""


def _route_step(now: RouteCount, last: RouteCount) -> RouteCount | None:
    """The increment from `last` to `now`; None when `now` is a new baseline."""
    if now.attempts < last.attempts or now.attempt_errors < last.attempt_errors:
        return None
    buckets = now.buckets
    if last.buckets:
        if len(now.buckets) != len(last.buckets):
            return None
        buckets = tuple(a - b for a, b in zip(now.buckets, last.buckets, strict=True))
        if any(step < 0 for step in buckets):
            return None
    return RouteCount(
        now.attempts - last.attempts, now.attempt_errors - last.attempt_errors, buckets
    )


def _backend_step(now: BackendCount, last: BackendCount) -> BackendCount | None:
    if now.attempts < last.attempts or now.attempt_errors < last.attempt_errors:
        return None
    return BackendCount(now.attempts - last.attempts, now.attempt_errors - last.attempt_errors)


def _add_buckets(total: tuple[int, ...], step: tuple[int, ...]) -> tuple[int, ...]:
    if not step:
        return total
    if not total:
        return step
    return tuple(a + b for a, b in zip(total, step, strict=True))


class Accumulator:
    """The fleet's totals since this accumulator first saw each instance (one per controller)."""

    def __init__(self) -> None:
        self._last_routes: dict[str, dict[Key, RouteCount]] = {}
        self._last_backends: dict[str, dict[Key, BackendCount]] = {}
        self._routes: dict[Key, RouteCount] = {}
        self._backends: dict[Key, BackendCount] = {}

    def fold(
        self, readings: Mapping[str, InstanceCounts]
    ) -> tuple[dict[Key, RouteCount], dict[Key, BackendCount]]:
        """Fold the current readings (instance -> its counts) in; the totals, as new dicts."""
        for gone in self._last_routes.keys() - readings.keys():
            del self._last_routes[gone]
            del self._last_backends[gone]
        lengths: dict[Key, Counter[int]] = {}
        inflight: Counter[Key] = Counter()
        route_steps: list[tuple[Key, RouteCount]] = []
        for instance, reading in readings.items():
            last_routes = self._last_routes.get(instance, {})
            for key, now in reading.routes.items():
                if now.buckets:
                    lengths.setdefault(key, Counter())[len(now.buckets)] += 1
                last = last_routes.get(key)
                step = _route_step(now, last) if last is not None else None
                route_steps.append((key, step or RouteCount(buckets=(0,) * len(now.buckets))))
            last_backends = self._last_backends.get(instance, {})
            for key, current in reading.backends.items():
                inflight[key] += current.inflight
                previous = last_backends.get(key)
                backend_step = _backend_step(current, previous) if previous is not None else None
                sofar = self._backends.get(key, BackendCount())
                if backend_step is not None:
                    sofar = BackendCount(
                        sofar.attempts + backend_step.attempts,
                        sofar.attempt_errors + backend_step.attempt_errors,
                    )
                self._backends[key] = sofar
            # Keys missing from this reading are forgotten: they come back as a baseline.
            self._last_routes[instance] = dict(reading.routes)
            self._last_backends[instance] = dict(reading.backends)
        self._retune_buckets(lengths)
        for key, step in route_steps:
            total = self._routes.get(key, RouteCount())
            buckets = total.buckets
            if not buckets or len(step.buckets) == len(buckets):
                buckets = _add_buckets(buckets, step.buckets)
            # else: another length than the fleet's: its attempts count, its buckets cannot.
            self._routes[key] = RouteCount(
                total.attempts + step.attempts, total.attempt_errors + step.attempt_errors, buckets
            )
        backends = {
            key: BackendCount(total.attempts, total.attempt_errors, inflight[key])
            for key, total in self._backends.items()
        }
        return dict(self._routes), backends

    def _retune_buckets(self, lengths: Mapping[Key, Counter[int]]) -> None:
        """Move a key's bucket total to the length the fleet now reports, when no current
        reading reports its old length any more (ties: the longer histogram)."""
        for key, seen in lengths.items():
            total = self._routes.get(key)
            if total is None or not total.buckets or len(total.buckets) in seen:
                continue
            length = max(seen, key=lambda n: (seen[n], n))
            self._routes[key] = RouteCount(total.attempts, total.attempt_errors, (0,) * length)
