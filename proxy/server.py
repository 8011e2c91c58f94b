"""Serving: one data plane in a process (`ProxyServer`), and a whole instance (`run`).

`ProxyServer` is what each worker process runs and what tests start in-process. Publishing a
snapshot is one assignment (see `DataPlane.install`); every request that begins afterwards
routes by it. `run` is `turnout run`: the control plane, its admin API and its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from proxy.config import ConfigError, Settings
from proxy.dataplane import DataPlane
from proxy.ports import PortInUse, is_in_use
from router import Snapshot, native

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

    def configure(self, settings: Settings) -> None:
        """Apply reloaded data-plane settings (the listener itself is not moved)."""
        assert self.dataplane is not None
        self.settings = settings
        self.dataplane.configure(settings)

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


class Instance:
    """A whole turnout instance: the control plane, its admin API and its workers.

    SIGTERM/SIGINT drain (a second one forces the exit), SIGHUP reloads the configuration.
    """

    def __init__(
        self, config_path: Path, settings: Settings, snapshot: Snapshot, log_level: str
    ) -> None:
        from proxy.control import ControlPlane

        self.settings = settings
        self.control = ControlPlane(config_path, settings, snapshot, log_level)
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Admin API first (so /ready answers 503 while workers start), then the workers.
        Raises OSError/RuntimeError when something cannot start."""
        from admin_api.app import create_app

        admin = self.settings.admin  # beyond loopback only with tokens: AdminConfig checks
        self._runner = web.AppRunner(create_app(self.control), access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, admin.host, admin.port).start()
        except OSError as error:
            await self._runner.cleanup()
            if is_in_use(error):
                raise PortInUse("admin API", admin.host, admin.port) from None
            raise
        log.info("admin API on http://%s:%d", admin.host, admin.port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload()))
        try:
            await self.control.start()
        except BaseException:
            await self.control.shutdown()
            await self._runner.cleanup()
            raise
        if self.control.phase == "draining":
            return  # a stop signal during start-up: `wait` returns once it has drained
        supervisor = self.control.supervisor
        log.info(
            "turnout listening on http://%s:%d with %d worker(s); data plane %s",
            self.settings.listen.host,
            supervisor.port,
            len(supervisor.slots),
            native.describe(),
        )

    @property
    def port(self) -> int:
        return self.control.supervisor.port

    async def wait(self) -> None:
        """Until a stop signal has drained everything."""
        await self._stopped.wait()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("stopped")

    async def stop(self) -> None:
        await self.control.shutdown()
        self._stopped.set()

    def _on_stop_signal(self) -> None:
        if self.control.phase == "draining":
            self.control.force_stop()
        else:
            self._spawn(self.stop())

    async def _reload(self) -> None:
        try:
            await self.control.reload()
        except ConfigError as error:
            log.error("reload refused, the running configuration is kept: %s", error)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def run(config_path: Path, settings: Settings, snapshot: Snapshot, log_level: str) -> int:
    """`turnout run`; returns the process exit status (load_config has refused an invalid
    configuration already)."""
    instance = Instance(config_path, settings, snapshot, log_level)
    try:
        await instance.start()
    except (OSError, RuntimeError) as error:
        log.error("cannot start: %s", error)
        return 1
    await instance.wait()
    return 0
