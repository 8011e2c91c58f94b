"""The proxy listener: start, publish snapshots, stop gracefully.

`ProxyServer` is what `turnout run` runs and what tests start in-process. Publishing a snapshot
is one assignment (see `DataPlane.install`); every request that begins afterwards routes by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

from proxy.config import Settings
from proxy.dataplane import DataPlane
from router import Snapshot

log = logging.getLogger("turnout")


class ProxyServer:
    def __init__(self, settings: Settings, snapshot: Snapshot) -> None:
        self.settings = settings
        self._snapshot = snapshot
        self.dataplane: DataPlane | None = None
        self._server: asyncio.Server | None = None

    async def start(self, sock: socket.socket | None = None) -> None:
        """Bind (or adopt `sock`) and start accepting connections."""
        loop = asyncio.get_running_loop()
        dataplane = self.dataplane = DataPlane(self.settings, self._snapshot, loop)
        listen = self.settings.listen
        if sock is not None:
            self._server = await loop.create_server(
                dataplane.new_connection, sock=sock, backlog=listen.backlog
            )
        else:
            self._server = await loop.create_server(
                dataplane.new_connection,
                listen.host,
                listen.port,
                backlog=listen.backlog,
                reuse_address=True,
            )
        dataplane.start()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def snapshot(self) -> Snapshot:
        assert self.dataplane is not None
        return self.dataplane.snapshot

    def publish(self, snapshot: Snapshot) -> None:
        """Route every request that begins from now on by `snapshot`."""
        assert self.dataplane is not None
        self.dataplane.install(snapshot)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let in-flight exchanges finish (up to `grace` seconds), close."""
        if self._server is None or self.dataplane is None:
            return
        self._server.close()
        dataplane = self.dataplane
        # Idle keep-alive connections can go now; busy ones close after their response.
        for connection in list(dataplane.connections):
            if connection.queue:
                connection.closing = True
            else:
                connection.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dataplane.all_closed(), grace)
        for connection in list(dataplane.connections):
            connection.abort()
        await dataplane.stop()
        self._server = None


async def run(settings: Settings, snapshot: Snapshot, grace: float = 10.0) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    server = ProxyServer(settings, snapshot)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "turnout listening on http://%s:%d with %d routes, %d pools",
        settings.listen.host,
        server.port,
        len(snapshot.routes),
        len(snapshot.pools),
    )
    await stop.wait()
    log.info("stopping: finishing in-flight requests (up to %g s)", grace)
    await server.stop(grace)
