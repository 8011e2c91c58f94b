"""Instance-wide counters from per-worker reports: what the whole instance did, not one process.

Workers report cumulative counters (proxy.channel.Stats) every second and on request. The sum
over live workers would go backwards when a worker is replaced (its successor starts from zero),
so a departing worker's last report is kept in `retired` and added in: instance totals only grow.
One sample of the totals per second is kept for a minute, which is what "observed over the last
minute" is computed from.
"""

from __future__ import annotations

import time
from collections import Counter, deque

from proxy.channel import Stats

WINDOW = 60.0


class Telemetry:
    def __init__(self) -> None:
        self.latest: dict[int, Stats] = {}
        self.retired_routed: Counter[tuple[str, str]] = Counter()
        self.retired_requests = 0
        self._samples: deque[tuple[float, Counter[tuple[str, str]]]] = deque()
        self._started = time.monotonic()

    def update(self, stats: Stats) -> None:
        self.latest[stats.worker_id] = stats

    def retire(self, worker_id: int) -> None:
        """The worker is gone: keep what it counted."""
        stats = self.latest.pop(worker_id, None)
        if stats is not None:
            self.retired_routed.update(stats.routed)
            self.retired_requests += stats.requests

    def routed(self) -> Counter[tuple[str, str]]:
        """Requests finished per (route, pool), over the life of the instance."""
        total = Counter(self.retired_routed)
        for stats in self.latest.values():
            total.update(stats.routed)
        return total

    def requests(self) -> int:
        return self.retired_requests + sum(stats.requests for stats in self.latest.values())

    def inflight(self) -> Counter[tuple[str, str]]:
        """Requests in flight per (pool, backend), summed over the live workers."""
        total: Counter[tuple[str, str]] = Counter()
        for stats in self.latest.values():
            total.update(stats.inflight)
        return total

    def sample(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._samples.append((now, self.routed()))
        while self._samples and now - self._samples[0][0] > WINDOW + 5:
            self._samples.popleft()

    def observed(self, route: str, now: float | None = None) -> dict[str, int]:
        """Requests per pool of `route` over the last minute (or since the start, if shorter)."""
        now = time.monotonic() if now is None else now
        current = self.routed()
        baseline: Counter[tuple[str, str]] = Counter()
        if now - self._started > WINDOW:  # younger than a window: count from the start
            for at, totals in self._samples:
                if now - at <= WINDOW:
                    baseline = totals
                    break
        return {
            pool: count - baseline.get((name, pool), 0)
            for (name, pool), count in sorted(current.items())
            if name == route and count - baseline.get((name, pool), 0) > 0
        }
