"""What the rollout tests share: a canary backend that can be told to fail or slow down, and
client traffic in a thread of its own while a test watches the rollout through the admin API.

Nothing is a mock: backends are aiohttp servers, the proxy is a real `turnout run`, the traffic
is real HTTP over loopback, bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from admin.admin_support import Api, BackendLoop
from aiohttp import web


@dataclass
class Switchable:
    """A backend's behaviour, changed by the test while it serves."""

    name: str
    failing: bool = False
    delay: float = 0.0
    first_failure: float | None = None
    """time.time() of the first 500 it answered."""
    served: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.served += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            if self.first_failure is None:
                self.first_failure = time.time()
            return web.Response(status=500, text=f"{self.name} broken")
        return web.Response(text=self.name)


def start(loop: BackendLoop, name: str) -> tuple[Switchable, str]:
    behaviour = Switchable(name)
    backend = loop.start(name, behaviour.handle)
    return behaviour, backend.url


@dataclass
class Traffic:
    """Keep-alive GETs through the proxy from a few threads until stopped (or `limit` s)."""

    port: int
    path: str = "/"
    clients: int = 2
    limit: float = 60.0
    seen: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _client(self) -> None:
        deadline = time.monotonic() + self.limit
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    connection.request("GET", self.path)
                    response = connection.getresponse()
                    body = response.read().decode()
                    self.seen[f"{response.status} {body}"] += 1
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        finally:
            connection.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(15)


def wait_for_rollout(api: Api, route: str, condition: Any, timeout: float = 30.0) -> Any:
    """Poll the rollout's status until `condition(status)`; the status."""
    deadline = time.monotonic() + timeout
    status: Any = None
    while time.monotonic() < deadline:
        status = api.get(f"/v1/routes/{route}/rollout")
        if condition(status):
            return status
        time.sleep(0.05)
    raise AssertionError(f"rollout of {route} never got there: {status}")


def rollout_history(api: Api) -> list[dict[str, Any]]:
    """History entries of rollout transitions, oldest first."""
    entries = api.get("/v1/history?limit=200")["changes"]
    return [e for e in reversed(entries) if e["action"].startswith("rollout-")]
