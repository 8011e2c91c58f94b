"""The control plane: the one owner of an instance's routing state.

Theory of operation. There is exactly one current `Snapshot`, held here. Every change (admin
API, reload, later the health checker) goes through `apply`, which holds a lock, computes the
new snapshot with a pure edit, publishes it to every worker, waits until each has applied it,
and only then makes it current and returns. Writers therefore never race each other, and a
caller that got an answer knows every worker routes by it.

Lifecycle: `starting` (workers coming up), `serving`, `draining` (SIGTERM: /ready is 503, workers
finish in-flight requests, then the process exits 0). SIGHUP or POST /v1/reload re-reads the
configuration file; an invalid file is rejected with its errors and the running state is kept.
What survives a reload is decided by `router.carry_runtime`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from proxy.config import ConfigError, Settings, load_config
from proxy.supervisor import Supervisor
from router import Snapshot, build_snapshot, carry_runtime

log = logging.getLogger("turnout.control")

Phase = Literal["starting", "serving", "draining"]

RESTART_ONLY = ("listen", "process", "admin")
"""Sections a reload cannot change in a running instance (they need a restart)."""


class ControlPlane:
    def __init__(
        self, config_path: Path, settings: Settings, snapshot: Snapshot, log_level: str = "info"
    ) -> None:
        self.config_path = config_path
        self.settings = settings
        self.file_spec = snapshot.spec
        self.snapshot = snapshot
        self.phase: Phase = "starting"
        self.reloads = 0
        self._lock = asyncio.Lock()
        self.supervisor = Supervisor(settings, self._current, log_level)

    def _current(self) -> tuple[Snapshot, Settings]:
        return self.snapshot, self.settings

    async def start(self) -> None:
        await self.supervisor.start()
        self.phase = "serving"

    @property
    def ready(self) -> bool:
        """Serving, and every worker routes by the current revision."""
        return self.phase == "serving" and self.supervisor.all_serving(self.snapshot.revision)

    async def apply(self, edit: Callable[[Snapshot], Snapshot]) -> Snapshot:
        """Make `edit(current)` the current snapshot everywhere, then return it.

        `edit` is a pure function (see router.edits); its errors propagate and change nothing.
        """
        async with self._lock:
            snapshot = edit(self.snapshot)
            await self.supervisor.publish(snapshot)
            self.snapshot = snapshot
            return snapshot

    async def reload(self) -> Snapshot:
        """Re-read the configuration file; ConfigError (nothing changed) if it is invalid."""
        async with self._lock:
            settings, file_snapshot = load_config(self.config_path)
            ignored = [
                section
                for section in RESTART_ONLY
                if getattr(settings, section) != getattr(self.settings, section)
            ]
            if ignored:
                log.warning(
                    "reload: changes to [%s] take effect only after a restart", ", ".join(ignored)
                )
                settings = settings.model_copy(
                    update={section: getattr(self.settings, section) for section in ignored}
                )
            spec = carry_runtime(self.file_spec, file_snapshot.spec, self.snapshot.spec)
            health = {
                key: value
                for key, value in self.snapshot.health.items()
                if spec.pool(key[0]) is not None
            }
            try:
                snapshot = build_snapshot(spec, health, revision=self.snapshot.revision + 1)
            except ValueError as error:  # cannot happen for a valid file; kept for safety
                raise ConfigError(self.config_path, [str(error)]) from error
            await self.supervisor.publish(snapshot, settings)
            self.settings, self.file_spec, self.snapshot = settings, file_snapshot.spec, snapshot
            self.reloads += 1
            log.info("reloaded %s: revision %d", self.config_path, snapshot.revision)
            return snapshot

    async def shutdown(self) -> None:
        """Drain: /ready turns 503, workers finish in-flight requests, then exit."""
        if self.phase == "draining":
            return
        self.phase = "draining"
        grace = self.settings.process.shutdown_timeout
        log.info("draining: in-flight requests have up to %g s", grace)
        await self.supervisor.drain(grace)

    def force_stop(self) -> None:
        log.warning("second signal: stopping now")
        self.supervisor.kill_all()
