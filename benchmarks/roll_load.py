"""Client load for the pool rollout scenarios: keep-alive GETs that record which version
answered each one, in threads of their own while the caller drives the rollout.

Each connection is one thread with one kept-alive HTTP/1.1 connection, sending a request,
reading the whole answer, sending the next (closed-loop, as wrk), paced to at most `rate`
requests a second in all. A share `slow_share` of the requests (exactly every 1/share-th
request started, counted over every connection) go to `slow_path`, which the versioned backend
answers late: what a drain must wait for. Every answer is recorded with its wall-clock times,
its status and its body (benchmarks.versioned_backend answers its version), or the error
that replaced it; a failed connection is replaced by a new one and the failure counted.

Stopping is by a flag each loop looks at before every request (and no request outlives its
timeout), never by interrupting a thread: a stop returns within one request's time.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Answer:
    started: float
    """time.time() when the request was sent."""
    ended: float
    status: int
    """The HTTP status; 0 when no answer came (the connection failed)."""
    body: str
    """The version that answered, or the error's type when none did."""
    slow: bool

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class Load:
    port: int
    connections: int = 8
    slow_share: float = 0.0
    slow_path: str = "/slow"
    path: str = "/"
    rate: float = 0.0
    """Requests a second in all, at most (0: as fast as the connections go)."""
    limit: float = 120.0
    """Seconds after which every connection stops by itself, if the caller never stops it."""
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _count: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        self._threads = [
            threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
            for i in range(self.connections)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT + 5)

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def _is_slow(self) -> bool:
        # next() on itertools.count is atomic under the GIL: one count for every thread.
        n = next(self._count)
        return int(n * self.slow_share) > int((n - 1) * self.slow_share)

    def _client(self) -> None:
        deadline = time.monotonic() + self.limit
        interval = self.connections / self.rate if self.rate > 0 else 0.0
        due = time.monotonic()
        connection = _connect(self.port)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if interval:
                    # Behind schedule starts at once but never bursts to catch up.
                    due = max(due + interval, time.monotonic())
                    if self._stop.wait(due - time.monotonic()):
                        break
                slow = self._is_slow()
                started = time.time()
                try:
                    connection.request("GET", self.slow_path if slow else self.path)
                    response = connection.getresponse()
                    body = response.read().decode(errors="replace")
                    answer = Answer(started, time.time(), response.status, body, slow)
                except (OSError, http.client.HTTPException) as error:
                    answer = Answer(started, time.time(), 0, type(error).__name__, slow)
                    connection.close()
                    connection = _connect(self.port)
                self.answers.append(answer)
        finally:
            connection.close()

    # Reading

    def between(self, start: float, end: float = float("inf")) -> list[Answer]:
        """Answers to requests sent in [start, end) (wall clock)."""
        return [a for a in self.answers if start <= a.started < end]

    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def versions(self, answers: list[Answer] | None = None) -> Counter[str]:
        return Counter(a.body for a in (self.answers if answers is None else answers) if a.ok)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time within [start, end] in which no answer arrived: a load that kept
        running has no long gap."""
        ends = sorted(a.ended for a in self.answers if start <= a.ended <= end)
        points = [start, *ends, end]
        return max(b - a for a, b in itertools.pairwise(points))


def _connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
