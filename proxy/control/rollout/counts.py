"""What the judge reads of one (route, pool): attempts, failed attempts, the latency histogram.

Pure: taken from the telemetry's sums (proxy.metrics.Sum, over every worker, live and retired),
which only grow; the controller keeps the last one it read and folds the increments in.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.metrics import Sum

EMPTY_BUCKETS: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PoolCounts:
    requests: int = 0
    """Upstream attempts: a retry that hid a failure from the client still counts."""
    errors: int = 0
    """Failed attempts: 5xx from the backend, connect failures, resets, timeouts."""
    buckets: tuple[int, ...] = EMPTY_BUCKETS
    """Latency histogram, per bucket (not cumulative)."""

    def minus(self, earlier: PoolCounts) -> PoolCounts:
        """The increment since `earlier` (never negative: a restart starts counters again)."""
        buckets = self.buckets
        if earlier.buckets and len(earlier.buckets) == len(buckets):
            buckets = tuple(max(0, a - b) for a, b in zip(buckets, earlier.buckets, strict=True))
        return PoolCounts(
            max(0, self.requests - earlier.requests), max(0, self.errors - earlier.errors), buckets
        )


def pool_counts(total: Sum | None) -> PoolCounts:
    if total is None:
        return PoolCounts()
    return PoolCounts(total.attempts, total.attempt_errors, tuple(total.buckets))
