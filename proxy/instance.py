"""The composition root: a whole turnout instance, what `turnout run` starts.

The one module that knows every other: it chooses the build of the data plane (proxy/native.py),
then assembles the configuration, the control plane (which owns the supervisor, the health
checker and the workers) and the admin API served over it. Nothing in the data plane or the
router imports it; the command line and the demo do. A worker process never loads it (nor
aiohttp): workers run proxy/worker.py.
"""

# ruff: noqa: E402  (the build is chosen before any module it governs is imported)
from __future__ import annotations

from proxy import native

native.activate()

import asyncio
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from admin_api.app import create_app
from proxy.config import ConfigError, Settings
from proxy.control import ControlPlane
from proxy.control.errors import FleetLagging, StateUnavailable
from proxy.ports import PortInUse, is_in_use
from router import Snapshot

log = logging.getLogger("turnout")


class Instance:
    """A whole turnout instance: the control plane, its admin API and its workers.

    SIGTERM/SIGINT drain (a second one forces the exit), SIGHUP reloads the configuration.
    """

    def __init__(
        self, config_path: Path, settings: Settings, snapshot: Snapshot, log_level: str
    ) -> None:
        self.settings = settings
        self.control = ControlPlane(config_path, settings, snapshot, log_level)
        self._runner: web.AppRunner | None = None
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Admin API first (so /ready answers 503 while workers start), then the workers.
        Raises OSError/RuntimeError when something cannot start."""
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
        except StateUnavailable as error:  # fleet mode, etcd away: nothing changed
            log.error("reload not made, the running configuration is kept: %s", error)
        except FleetLagging as error:  # fleet mode: made, some instances are behind
            log.warning("reload: %s", error)

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
