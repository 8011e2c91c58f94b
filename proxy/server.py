"""Serving one data plane in a process: `ProxyServer`.

`ProxyServer` is what each worker process runs and what tests start in-process. Publishing a
snapshot, with reloaded settings or not, is one assignment (see `DataPlane.install`); every request that begins afterwards
routes by it. A worker imports this module, so it holds nothing else: the whole instance (the
control plane, its admin API and its workers) is assembled in proxy/instance.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from proxy.config import Settings
from proxy.dataplane import DataPlane
from router import Snapshot


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

    def publish(self, snapshot: Snapshot, settings: Settings | None = None) -> None:
        """Route every request that begins from now on by `snapshot`, with the limits of
        reloaded `settings` if given (the listener itself is not moved): one install."""
        assert self.dataplane is not None
        if settings is not None:
            self.settings = settings
        self.dataplane.install(snapshot, settings)

    async def stop(self, grace: float = 10.0) -> None:
        """Graceful stop: stop accepting, answer in-flight requests with Connection: close,
        give idle connections a moment for one last request, close everything by `grace`."""
        if self._server is None or self.dataplane is None:
            return
        self._server.close()
        dataplane = self.dataplane
        dataplane.drain(idle_grace=min(1.0, grace))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dataplane.all_closed(), grace)
        for connection in list(dataplane.connections):
            connection.abort()
        await dataplane.stop()
        self._server = None
