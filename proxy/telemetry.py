"""Instance-wide counters from per-worker reports: what the whole instance did, not one process.

Workers report cumulative counters (proxy.channel.Stats) every second and on request. The sum
over live workers would go backwards when a worker is replaced (its successor starts from zero),
so a departing worker's last report is kept in `retired` and added in: instance totals only grow
(gauges such as in-flight counts are taken from live workers only). One sample of the requests
per (route, pool) is kept each second for a minute, which is what "observed over the last
minute" is computed from.
"""

from __future__ import annotations

import time
from collections import Counter, deque

from proxy.channel import Stats
from proxy.metrics import BackendReport, Sum

WINDOW = 60.0

Key = tuple[str, str]


class Telemetry:
    def __init__(self) -> None:
        self.latest: dict[int, Stats] = {}
        self.retired_routes: dict[Key, Sum] = {}
        self.retired_backends: dict[Key, Counter[str]] = {}
        self.retired_requests = 0
        self._samples: deque[tuple[float, Counter[Key]]] = deque()
        self._started = time.monotonic()

    def update(self, stats: Stats) -> None:
        self.latest[stats.worker_id] = stats

    def retire(self, worker_id: int) -> None:
        """The worker is gone: keep what it counted (but not its in-flight gauges)."""
        stats = self.latest.pop(worker_id, None)
        if stats is None:
            return
        self.retired_requests += stats.requests
        for key, report in stats.routes.items():
            self.retired_routes.setdefault(key, Sum()).add(report, counters_only=True)
        for key, backend in stats.backends.items():
            self.retired_backends.setdefault(key, Counter()).update(
                connect_errors=backend.connect_errors,
                timeouts=backend.timeouts,
                retries=backend.retries,
                attempts=backend.attempts,
                attempt_errors=backend.attempt_errors,
            )

    def routes(self) -> dict[Key, Sum]:
        """(route, pool) -> everything its requests did, over the life of the instance."""
        total: dict[Key, Sum] = {}
        for key, retired in self.retired_routes.items():
            total.setdefault(key, Sum()).add_sum(retired)
        for stats in self.latest.values():
            for key, report in stats.routes.items():
                total.setdefault(key, Sum()).add(report)
        return total

    def backends(self) -> dict[Key, BackendReport]:
        """(pool, backend) -> counters (live and retired) and gauges (live)."""
        total: dict[Key, Counter[str]] = {
            key: Counter(retired) for key, retired in self.retired_backends.items()
        }
        for stats in self.latest.values():
            for key, report in stats.backends.items():
                total.setdefault(key, Counter()).update(
                    inflight=report.inflight,
                    connect_errors=report.connect_errors,
                    timeouts=report.timeouts,
                    retries=report.retries,
                    connections=report.connections,
                    attempts=report.attempts,
                    attempt_errors=report.attempt_errors,
                )
        return {
            key: BackendReport(
                inflight=c["inflight"],
                connect_errors=c["connect_errors"],
                timeouts=c["timeouts"],
                retries=c["retries"],
                connections=c["connections"],
                attempts=c["attempts"],
                attempt_errors=c["attempt_errors"],
            )
            for key, c in total.items()
        }

    def routed(self) -> Counter[Key]:
        """Requests finished per (route, pool), over the life of the instance."""
        return Counter({key: total.requests for key, total in self.routes().items()})

    def requests(self) -> int:
        return self.retired_requests + sum(stats.requests for stats in self.latest.values())

    def inflight(self) -> Counter[Key]:
        """Requests in flight per (pool, backend), summed over the live workers."""
        total: Counter[Key] = Counter()
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
        baseline: Counter[Key] = Counter()
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
