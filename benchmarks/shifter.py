"""Weight changes through turnout's admin API while a load runs (the `shifting` scenario).

A thread swings a weighted route between two settings (the first pool at 90 %, then at 10 %)
every `every` seconds. Each PUT returns once every worker has installed the new revision, so its
round trip is how long a change takes to reach all of the data plane. The time each setting was
in force gives the split the backends should have seen.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True, slots=True)
class ShiftResult:
    changes: int
    """Weight changes acknowledged by every worker during the load."""
    failed: int
    median_ms: float
    """Round trip of one change: the PUT until every worker routes by it."""
    max_ms: float
    set_pct: dict[str, float]
    """Per pool, its share of the weights averaged over the time each setting was in force."""


def settings(pools: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
    """The two weight settings to swing between: the first pool at 90 %, then at 10 %."""
    first, rest = pools[0], pools[1:]
    high = {first: 9 * len(rest), **{pool: 1 for pool in rest}}
    low = {first: len(rest), **{pool: 9 for pool in rest}}
    return high, low


class Shifter:
    """`with Shifter(...) as shifter:` changes weights until the block ends, then puts
    `initial` back (so the next scenario measures the configured split); then `result()`."""

    def __init__(self, admin_port: int, route: str, initial: dict[str, int], every: float) -> None:
        self._admin_port = admin_port
        self._route = route
        self._initial = dict(initial)
        self._pools = tuple(initial)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="weight-shifter", daemon=True)
        self._round_trips: list[float] = []
        self._failed = 0
        # (monotonic time a setting was in force from, the setting)
        self._in_force: list[tuple[float, dict[str, int]]] = []
        self._started = self._stopped = 0.0

    def __enter__(self) -> Shifter:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._stopped = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self._admin_port, timeout=5)
        try:
            if not self._put(connection, self._initial):
                raise RuntimeError(f"could not restore the weights {self._initial}")
        finally:
            connection.close()

    def _run(self) -> None:
        high, low = settings(self._pools)
        connection = http.client.HTTPConnection("127.0.0.1", self._admin_port, timeout=5)
        index = 0
        try:
            while not self._stop.is_set():
                weights = (high, low)[index % 2]
                index += 1
                sent = time.monotonic()
                if self._put(connection, weights):
                    done = time.monotonic()
                    self._round_trips.append(done - sent)
                    self._in_force.append((done, weights))
                else:
                    self._failed += 1
                    connection.close()
                self._stop.wait(max(0.0, self._every - (time.monotonic() - sent)))
        finally:
            connection.close()

    def _put(self, connection: http.client.HTTPConnection, weights: dict[str, int]) -> bool:
        body = json.dumps({"weights": weights})
        try:
            connection.request(
                "PUT",
                f"/v1/routes/{self._route}/weights",
                body=body,
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            return False
        return response.status == 200

    def result(self) -> ShiftResult:
        """What happened while the block ran."""
        initial = self._initial
        spans = [(self._started, initial), *self._in_force]
        seconds = {pool: 0.0 for pool in self._pools}
        for (begin, weights), (end, _) in zip(
            spans, [*spans[1:], (self._stopped, initial)], strict=True
        ):
            total = sum(weights.values())
            for pool in self._pools:
                seconds[pool] += (end - begin) * weights.get(pool, 0) / total
        elapsed = max(self._stopped - self._started, 1e-9)
        trips = self._round_trips or [0.0]
        return ShiftResult(
            changes=len(self._round_trips),
            failed=self._failed,
            median_ms=1000 * statistics.median(trips),
            max_ms=1000 * max(trips),
            set_pct={pool: 100 * seconds[pool] / elapsed for pool in self._pools},
        )
