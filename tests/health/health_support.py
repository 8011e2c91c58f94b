"""Backends whose health and answers a test controls, and a helper to watch a backend's state."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from helpers import Backend, ProxyProcess, start_backend


@dataclass
class Controlled:
    """A real backend: /healthz answers `health`, everything else `status` with its name."""

    name: str
    health: int = 200
    status: int = 200
    flap: bool = False
    """/healthz alternates 200 and 500 on every probe."""
    probes: int = 0
    backend: Backend | None = None
    traffic: Counter[str] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/healthz":
            self.probes += 1
            status = (200 if self.probes % 2 else 500) if self.flap else self.health
            return web.Response(status=status, text="ok")
        self.traffic[request.path] += 1
        return web.Response(status=self.status, text=self.name)

    async def start(self, port: int = 0) -> Controlled:
        self.backend = await start_backend(self.name, self.handle, port=port)
        return self

    async def stop(self) -> None:
        if self.backend is not None:
            await self.backend.stop()

    async def restart(self) -> None:
        assert self.backend is not None
        await self.start(self.backend.port)

    @property
    def url(self) -> str:
        assert self.backend is not None
        return self.backend.url

    @property
    def served(self) -> int:
        return sum(self.traffic.values())


async def started(*names: str, **options: Any) -> list[Controlled]:
    return [await Controlled(name, **options).start() for name in names]


async def admin(proxy: ProxyProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(proxy.admin, method, path, body)


async def backend_view(proxy: ProxyProcess, pool: str, name: str) -> dict[str, Any]:
    _, view = await admin(proxy, "GET", f"/v1/pools/{pool}")
    found: dict[str, Any] = next(b for b in view["backends"] if b["name"] == name)
    return found


async def wait_until(condition: Any, timeout: float = 10.0, step: float = 0.02) -> float:
    """Poll `condition` (async) until true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)
    return time.monotonic()


def health_config(**overrides: Any) -> dict[str, Any]:
    """Fast active checks for tests."""
    return {
        "enabled": True,
        "interval": 0.3,
        "jitter": 0.1,
        "timeout": 0.2,
        "unhealthy_threshold": 2,
        "healthy_threshold": 2,
        **overrides,
    }
