"""The built-in benchmark backend, for machines without nginx: `python -m benchmarks.backend`.

A uvloop protocol parsing requests with httptools (llhttp), serving what the nginx backends
serve: `/` (20 bytes), `/64k` (65536 bytes), `POST /upload` (body read and dropped) and
`/__status`, which answers in nginx's stub_status format so one reader serves both kinds.
Like nginx, it counts a request once its head is parsed, the status request included.

For the rollout benchmark it can also be told to break: `GET /__fail?on` makes every other
path answer 500 from then on, `?off` heals it (and forgets), and `/__fail` alone reads (JSON) whether it
fails, the wall-clock time of its first failing answer and how many it gave.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import cast

import httptools
import uvloop

from benchmarks.scenarios import (
    LARGE_BYTES,
    LARGE_PATH,
    SMALL_PATH,
    STATUS_PATH,
    UPLOAD_PATH,
    small_body,
)

FAIL_PATH = "/__fail"


def _response(body: bytes, status: bytes = b"200 OK", close: bool = False) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
    if close:
        head += b"Connection: close\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Counter:
    def __init__(self) -> None:
        self.requests = 0
        self.accepted = 0
        self.active = 0

    def status(self) -> bytes:
        return (
            f"Active connections: {self.active} \n"
            "server accepts handled requests\n"
            f" {self.accepted} {self.accepted} {self.requests} \n"
            f"Reading: 0 Writing: 1 Waiting: {max(self.active - 1, 0)} \n"
        ).encode()


class Breakage:
    """Whether the backend answers 500, switched over FAIL_PATH while it serves."""

    def __init__(self) -> None:
        self.failing = False
        self.first_failure: float | None = None
        """time.time() of the first 500, so another process can time detection from it."""
        self.failed = 0

    def control(self, query: bytes) -> bytes:
        """`on` breaks it, `off` heals it and forgets its failures; the state before an `off`
        (so a reader gets the failures it healed), after anything else."""
        if query == b"on":
            self.failing = True
        state = {
            "failing": self.failing,
            "first_failure": self.first_failure,
            "failed": self.failed,
        }
        if query == b"off":
            self.failing, self.first_failure, self.failed = False, None, 0
            state["failing"] = False
        return json.dumps(state).encode()

    def fail(self, close: bool) -> bytes:
        if self.first_failure is None:
            self.first_failure = time.time()
        self.failed += 1
        return _response(b"broken\n", b"500 Internal Server Error", close=close)


class BackendProtocol(asyncio.Protocol):
    def __init__(self, name: str, counter: Counter, large: bytes, breakage: Breakage) -> None:
        self.counter = counter
        self.breakage = breakage
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.bodies = {
            SMALL_PATH.encode(): small_body(name).encode(),
            LARGE_PATH.encode(): large,
            UPLOAD_PATH.encode(): b"ok\n",
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.counter.accepted += 1
        self.counter.active += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.counter.active -= 1

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.transport.close()
        except httptools.HttpParserError:
            self.transport.write(_response(b"bad request\n", b"400 Bad Request", close=True))
            self.transport.close()

    # A slow reader must not make us buffer without bound: stop reading until it catches up.
    def pause_writing(self) -> None:
        assert self.transport is not None
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.counter.requests += 1

    def on_message_complete(self) -> None:
        assert self.transport is not None
        path, _, query = self.url.partition(b"?")
        keep_alive = self.parser.should_keep_alive()
        if path == STATUS_PATH.encode():
            response = _response(self.counter.status(), close=not keep_alive)
        elif path == FAIL_PATH.encode():
            response = _response(self.breakage.control(query), close=not keep_alive)
        elif self.breakage.failing:
            response = self.breakage.fail(close=not keep_alive)
        elif path in self.bodies:
            response = _response(self.bodies[path], close=not keep_alive)
        else:
            response = _response(b"not found\n", b"404 Not Found", close=not keep_alive)
        self.transport.write(response)
        if not keep_alive:
            self.transport.close()


async def serve(name: str, host: str, ports: Sequence[int]) -> None:
    """Serve on every port, one counter for all (the health benchmark runs 50 backends in one
    process; its status reports them together)."""
    loop = asyncio.get_running_loop()
    counter = Counter()
    breakage = Breakage()
    large = bytes(range(256)) * (LARGE_BYTES // 256)
    servers = [
        await loop.create_server(
            lambda: BackendProtocol(name, counter, large, breakage), host, port, backlog=4096
        )
        for port in ports
    ]
    await asyncio.gather(*(server.serve_forever() for server in servers))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, action="append", required=True, help="repeatable")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.name, args.host, args.port))


if __name__ == "__main__":
    main()
