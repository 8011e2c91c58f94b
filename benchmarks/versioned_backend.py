"""A backend program with a version, for the pool rollout scenarios:
`python -m benchmarks.versioned_backend --port P --version v2`.

What a rolling replacement replaces: a process on a fixed address that a hook stops and starts
again in another version (benchmarks.replace_hook). It answers every path with its version as
the body, so a client sees which version served it:

- `/healthz`: 200, always (a bad version passes its checks; only the judge can catch it);
- `--slow-path` (default `/slow`): 200 after `--slow-seconds`;
- anything else: 200, or 500 for a share `--error-rate` of them (exactly every 1/rate-th
  request, not at random, so a scenario's figures do not wobble from run to run).

SIGTERM stops it gracefully, as a well-behaved application server does: it stops accepting at
once, closes its idle keep-alive connections, finishes the requests in flight (their responses
say `Connection: close`), then exits 0; whatever is still running after `--grace` seconds is
cut off (exit 1). A uvloop protocol parsing requests with httptools (llhttp), as
benchmarks.backend: it starts in a fraction of a second, which is what a hook waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httptools
import uvloop

HEALTH_PATH = b"/healthz"


@dataclass(frozen=True, slots=True)
class Behaviour:
    version: str
    error_rate: float = 0.0
    slow_path: bytes = b"/slow"
    slow_seconds: float = 2.0


class Served:
    """What the process has done, for its log line at exit."""

    def __init__(self) -> None:
        self.requests = 0
        """Answers on paths other than HEALTH_PATH (the ones `error_rate` applies to)."""
        self.errors = 0

    def fails_next(self, rate: float) -> bool:
        """Whether the next answer is a 500: the n-th is when n x rate crosses an integer."""
        self.requests += 1
        failed = int(self.requests * rate) > int((self.requests - 1) * rate)
        self.errors += failed
        return failed


def _response(body: bytes, status: bytes, close: bool) -> bytes:
    head = b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n"
    if close:
        head += b"Connection: close\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Connection(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.busy = False
        """A request is being received or answered: a graceful stop waits for it."""
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.server.changed()

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(_response(b"bad request\n", b"400 Bad Request", close=True))
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.busy = True

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path = self.url.partition(b"?")[0]
        keep_alive = self.parser.should_keep_alive()
        behaviour = self.server.behaviour
        if path == behaviour.slow_path:
            task = asyncio.ensure_future(self._later(behaviour.slow_seconds, keep_alive))
            self.server.tasks.add(task)
            task.add_done_callback(self.server.tasks.discard)
            return
        status = b"200 OK"
        if path != HEALTH_PATH and self.server.served.fails_next(behaviour.error_rate):
            status = b"500 Internal Server Error"
        self._answer(status, keep_alive)

    async def _later(self, seconds: float, keep_alive: bool) -> None:
        await asyncio.sleep(seconds)
        self.server.served.requests += 1
        self._answer(b"200 OK", keep_alive)

    def _answer(self, status: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        close = self.closing or not keep_alive
        body = self.server.behaviour.version.encode()
        self.transport.write(_response(body, status, close))
        self.busy = False
        if close:
            self.transport.close()

    def stop(self) -> None:
        """The server stops: an idle connection closes now, a busy one after its answer."""
        assert self.transport is not None
        self.closing = True
        if not self.busy:
            self.transport.close()


class Server:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.served = Served()
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Future[None]] = set()
        self._idle = asyncio.Event()

    def changed(self) -> None:
        if not self.connections:
            self._idle.set()

    async def run(self, host: str, port: int, pidfile: Path | None, grace: float) -> int:
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(lambda: Connection(self), host, port, backlog=1024)
        if pidfile is not None:
            _claim(pidfile)
        print(
            f"{self.behaviour.version} listening on {host}:{port} (pid {os.getpid()})", flush=True
        )
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        loop.add_signal_handler(signal.SIGINT, stopping.set)
        await stopping.wait()
        listener.close()  # no new connection from here on
        busy = [c for c in self.connections if c.busy]
        probes = sum(c.url.startswith(HEALTH_PATH) for c in busy)
        print(
            f"SIGTERM: stopped accepting; finishing {len(busy) - probes} requests in flight"
            f" (and {probes} probes)",
            flush=True,
        )
        for connection in list(self.connections):
            connection.stop()
        self.changed()
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
            status = 0
        except TimeoutError:
            print(f"{len(self.connections)} connections still busy after {grace:g} s", flush=True)
            status = 1
        served = self.served
        print(f"exiting: served {served.requests} requests, {served.errors} errors", flush=True)
        if pidfile is not None:
            _release(pidfile)
        return status


def _claim(pidfile: Path) -> None:
    """Say that this process serves the backend now (once it listens: a hook waits for it)."""
    pidfile.write_text(f"{os.getpid()}\n")


def _release(pidfile: Path) -> None:
    """Remove the pidfile, unless a newer process has claimed it already."""
    with contextlib.suppress(OSError):
        if pidfile.read_text().strip() == str(os.getpid()):
            pidfile.unlink()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True, help="answered as every response's body")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of 500s (0 to 1)")
    parser.add_argument("--slow-path", default="/slow")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--pidfile", type=Path, help="written once listening")
    parser.add_argument("--grace", type=float, default=30.0, help="seconds SIGTERM waits")
    args = parser.parse_args(argv)
    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be between 0 and 1")
    behaviour = Behaviour(args.version, args.error_rate, args.slow_path.encode(), args.slow_seconds)
    started = time.monotonic()
    status = uvloop.run(Server(behaviour).run(args.host, args.port, args.pidfile, args.grace))
    print(f"ran {time.monotonic() - started:.1f} s", flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
