"""The built-in load generator, for machines without wrk: `python -m benchmarks.loadgen`.

Closed-loop like wrk: each connection sends a request, waits for the whole response, sends the
next (keep-alive unless --close). Responses are parsed with httptools. It prints one JSON line
with the fields of `benchmarks.load.LoadResult`.

It runs on one core in Python, so it saturates long before nginx does: the benchmark always
measures it against a backend directly too, and reports that figure as its ceiling.

`--rate` paces the connections together to at most that many requests a second (the rollout
benchmark wants a known, modest load beside the proxy); SIGTERM or SIGINT ends the run early
and still prints the report, over the time it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop


class Stats:
    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
        self.http_errors = 0


class ClientProtocol(asyncio.Protocol):
    """One client connection; `request()` sends a request and resolves to its status."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[int] | None = None
        self.keep_alive = True
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed mid-response"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionResetError(f"bad response: {error}"))

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.parser.get_status_code())

    def request(self, payload: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def request_bytes(
    url: str, method: str, body_bytes: int, close: bool, headers: Sequence[str] = ()
) -> bytes:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
    head += "".join(f"{header}\r\n" for header in headers)
    if close:
        head += "Connection: close\r\n"
    if body_bytes or method != "GET":
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {body_bytes}\r\n"
    return (head + "\r\n").encode() + b"x" * body_bytes


async def connection_loop(
    host: str,
    port: int,
    payload: bytes,
    deadline: float,
    request_timeout: float,
    stats: Stats,
    interval: float = 0.0,
    stopping: Sequence[int] = (),
) -> None:
    """Requests one after another until `deadline` or a stop signal (`stopping` not empty),
    each at least `interval` s after the last one's start (0: at once).

    The loop looks at `stopping` itself rather than trusting cancellation alone: on Python 3.11
    `asyncio.wait_for` swallows a cancellation that arrives as its request completes (fixed in
    3.12), and the task then ran on to its deadline. A loaded suite saw that as a generator that
    ignored SIGTERM for 15 s."""
    loop = asyncio.get_running_loop()
    client: ClientProtocol | None = None
    due = time.monotonic()
    try:
        while not stopping and time.monotonic() < deadline:
            if interval:
                # Behind schedule (a slow answer) starts at once but never bursts to catch up.
                due = max(due + interval, time.monotonic())
                await asyncio.sleep(due - time.monotonic())
            if client is None or client.lost or not client.keep_alive:
                if client is not None:
                    client.close()
                try:
                    _, client = await loop.create_connection(ClientProtocol, host, port)
                except OSError:
                    stats.errors["connect"] += 1
                    client = None
                    await asyncio.sleep(0.01)
                    continue
            start = time.perf_counter_ns()
            try:
                status = await asyncio.wait_for(client.request(payload), request_timeout)
            except TimeoutError:
                stats.errors["timeout"] += 1
                client.close()
                client = None
                continue
            except ConnectionError:
                stats.errors["read"] += 1
                client = None
                continue
            if time.monotonic() < deadline:
                stats.latencies_ns.append(time.perf_counter_ns() - start)
                if status >= 400:
                    stats.http_errors += 1
    finally:
        if client is not None:
            client.close()


POLL = 0.05
"""Seconds between looks at whether a stop signal came."""


def percentile(ordered: list[int], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] / 1e6


async def generate(
    url: str,
    connections: int,
    duration: float,
    payload: bytes,
    request_timeout: float,
    rate: float = 0.0,
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats = Stats()
    # A plain signal handler and a poll: the interpreter runs the handler at the next bytecode,
    # and the poll below runs bytecode every POLL seconds whatever the loop is waiting for.
    stopping: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    interval = connections / rate if rate > 0 else 0.0
    started = time.monotonic()
    deadline = started + duration
    tasks = [
        asyncio.create_task(
            connection_loop(
                host, port, payload, deadline, request_timeout, stats, interval, stopping
            )
        )
        for _ in range(connections)
    ]
    # Requests still in flight at the deadline are neither waited for nor counted (as wrk).
    while not stopping and time.monotonic() < deadline:  # noqa: ASYNC110 (a poll, see above)
        await asyncio.sleep(min(POLL, max(0.0, deadline - time.monotonic())))
    window = min(duration, time.monotonic() - started)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - started
    ordered = sorted(stats.latencies_ns)
    return {
        "requests": len(ordered),
        "duration_s": round(elapsed, 3),
        "requests_per_s": round(len(ordered) / window, 2) if window > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(ordered, 0.50),
            "p90": percentile(ordered, 0.90),
            "p99": percentile(ordered, 0.99),
            "max": ordered[-1] / 1e6 if ordered else 0.0,
        },
        "socket_errors": stats.errors,
        "http_errors": stats.http_errors,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-bytes", type=int, default=0)
    parser.add_argument("--close", action="store_true")
    parser.add_argument("--header", action="append", default=[], help='"Name: value", repeatable')
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests a second in all, at most (0: no limit)"
    )
    args = parser.parse_args(argv)
    payload = request_bytes(args.url, args.method, args.body_bytes, args.close, args.header)
    report = uvloop.run(
        generate(args.url, args.connections, args.duration, payload, args.timeout, args.rate)
    )
    # Flushed at once: the report is the run's result, whatever happens at exit.
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
