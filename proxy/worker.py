"""A data-plane worker process: `python -m proxy.worker --listen-fd N --channel-fd M`.

Started only by the control plane (proxy.supervisor), which hands it a listening socket and one
end of a socketpair. Theory of operation:

1. Read `Hello` (settings, spec, health, revision) and build the snapshot *before* accepting a
   single connection, so no request is ever routed by anything but the current state.
2. Serve on the inherited socket, send `Ready`.
3. For every `Install`, build the new snapshot and install it with the reloaded settings, if
   any (one assignment: routing and limits together), then `Ack` it;
   the control plane answers an admin write only once every worker has acknowledged.
4. Report `Stats` every second and on `Query`.
5. On `Drain` (or SIGTERM, or the control plane vanishing): stop accepting, answer in-flight
   requests with `Connection: close`, exit 0 once they are done or the grace period is over.

Ctrl-C in a terminal reaches the whole process group; workers ignore SIGINT and let the control
plane decide, so that a shutdown is always the orderly one.
"""

# ruff: noqa: E402  (the build is chosen before any module it governs is imported)
from __future__ import annotations

from proxy import native

native.activate()

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys

import uvloop

from proxy.channel import Ack, Channel, Drain, Hello, Install, Outlier, Query, Ready, Stats
from proxy.dataplane import Target
from proxy.server import ProxyServer
from proxy.spec_delta import SpecDelta
from proxy.stats_delta import Sent
from router import build_snapshot

log = logging.getLogger("turnout.worker")

STATS_INTERVAL = 1.0


class Worker:
    def __init__(self, channel: Channel, hello: Hello) -> None:
        self.channel = channel
        self.worker_id = hello.worker_id
        self.revision = hello.revision
        self.grace = hello.settings.process.shutdown_timeout
        self.server = ProxyServer(
            hello.settings,
            build_snapshot(hello.spec, hello.health, hello.revision, hello.readmitted),
        )
        self.draining: asyncio.Task[None] | None = None
        self.sent = Sent()
        """The reports last sent: each Stats carries only the ones that moved since."""

    async def serve(self, listen: socket.socket) -> None:
        await self.server.start(sock=listen)
        dataplane = self.server.dataplane
        assert dataplane is not None
        dataplane.on_outlier = self._report_outlier
        # Everything allocated so far (modules, settings, the snapshot) lives as long as the
        # process: moved out of the collector's generations, a full collection no longer walks
        # it, and a full collection during load is a pause for every request in flight.
        gc.collect()
        gc.freeze()
        self.channel.send(Ready(self.worker_id, os.getpid(), self.revision))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.drain, self.grace)
        reporter = asyncio.create_task(self._report())
        try:
            while (message := await self.channel.receive()) is not None:
                if isinstance(message, Install):
                    self._install(message)
                elif isinstance(message, Query):
                    self.channel.send(self._stats())
                elif isinstance(message, Drain):
                    self.drain(message.grace)
                    break
            else:
                log.error("worker %d: control plane gone; draining", self.worker_id)
                self.drain(min(self.grace, 5.0))
            assert self.draining is not None
            await self.draining
        finally:
            reporter.cancel()

    def _install(self, message: Install) -> None:
        if message.settings is not None:
            self.grace = message.settings.process.shutdown_timeout
        current = self.server.snapshot
        spec = message.spec
        if isinstance(spec, SpecDelta):
            spec = spec.apply(current.spec)
        # Only what changed is compiled: the rest is the current snapshot's (router.reuse).
        snapshot = build_snapshot(
            spec, message.health, message.revision, message.readmitted, previous=current
        )
        self.server.publish(snapshot, message.settings)
        self.revision = message.revision
        self.channel.send(Ack(message.revision))

    def _report_outlier(self, target: Target, reason: str, count: int) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.channel.send(Outlier(self.worker_id, target.pool, target.backend, reason, count))

    def drain(self, grace: float) -> None:
        if self.draining is None:
            self.draining = asyncio.ensure_future(self._drain(grace))

    async def _drain(self, grace: float) -> None:
        await self.server.stop(grace)
        with contextlib.suppress(ConnectionError, RuntimeError):
            self.channel.send(self._stats())
            await self.channel.writer.drain()

    def _stats(self) -> Stats:
        dataplane = self.server.dataplane
        assert dataplane is not None
        routes, backends = dataplane.reports()
        # Only what moved since the previous Stats: the control plane merges (stats_delta).
        return Stats(
            worker_id=self.worker_id,
            revision=self.revision,
            requests=dataplane.requests,
            connections=len(dataplane.connections),
            inflight=dataplane.inflight(),
            routes=self.sent.routes_changed(routes),
            backends=self.sent.backends_changed(backends),
            partial=True,
        )

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            with contextlib.suppress(ConnectionError, RuntimeError):
                self.channel.send(self._stats())


async def run(listen_fd: int, channel_fd: int) -> int:
    channel = await Channel.over(socket.socket(fileno=channel_fd))
    hello = await channel.receive()
    if not isinstance(hello, Hello):
        log.error("worker: expected Hello from the control plane, got %r", hello)
        return 1
    worker = Worker(channel, hello)
    await worker.serve(socket.socket(fileno=listen_fd))
    channel.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxy.worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s",
    )
    return uvloop.run(run(args.listen_fd, args.channel_fd))


if __name__ == "__main__":
    sys.exit(main())
