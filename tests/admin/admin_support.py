"""What the admin API tests share: calls with any headers, backends on an event loop of their
own, traffic through the proxy, and `turnout run` in a directory that outlives one process.

Nothing here is a mock: the admin API is the one a real `turnout run` serves, backends are
aiohttp servers, and every call and request goes over a loopback socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from helpers import (
    TURNOUT,
    Backend,
    Handler,
    ProxyProcess,
    config,
    free_port,
    start_backend,
    toml,
    wait_until_ready,
)

PROBLEM = "urn:turnout:problem:"
JSON = "application/json"


@dataclass
class Reply:
    """One admin API answer: status, headers (case-insensitive) and the raw body."""

    status: int
    headers: Message
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type()

    def ok(self, status: int = 200) -> Any:
        """Assert a success with a JSON body; the body."""
        assert self.status == status, (self.status, self.raw)
        assert self.content_type == JSON
        return self.json

    def problem(self, status: int, slug: str) -> dict[str, Any]:
        """Assert an RFC 9457 problem document of that status and type; the document."""
        assert self.status == status, (self.status, self.raw)
        assert self.content_type == "application/problem+json", self.headers
        body: dict[str, Any] = self.json
        assert body["type"] == PROBLEM + slug, body
        assert body["status"] == status, body
        assert isinstance(body["title"], str), body
        assert body["title"], body
        return body


class Api:
    """The admin API of one instance, called over real HTTP, with a bearer token if given."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """`body` is sent as JSON (application/json); `raw` as is, with only `headers`."""
        sent: dict[str, str] = {}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = JSON
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())

    def get(self, path: str) -> Any:
        return self.call("GET", path).ok()

    async def acall(self, method: str, path: str, body: Any = None, **options: Any) -> Reply:
        """`call` in a thread, for async tests (their event loop must stay free)."""
        return await asyncio.to_thread(self.call, method, path, body, **options)

    def state(self) -> dict[str, Any]:
        """Everything a change could touch: every route, every pool, the newest history entry,
        and the ETags they were served with."""
        routes = self.call("GET", "/v1/routes")
        pools = self.call("GET", "/v1/pools")
        history = self.call("GET", "/v1/history?limit=1")
        return {
            "routes": routes.ok(),
            "pools": pools.ok(),
            "history": history.ok(),
            "etags": [routes.etag, pools.etag, history.etag],
        }


def api(proxy: ProxyProcess, token: str | None = None) -> Api:
    return Api(proxy.admin_url, token)


class BackendLoop:
    """aiohttp backends served by an event loop in a thread of their own: they keep answering
    while a test blocks on an admin call, and a module-scoped fixture can own them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.backends: list[Backend] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def start(self, name: str, handler: Handler | None = None) -> Backend:
        future = asyncio.run_coroutine_threadsafe(start_backend(name, handler), self.loop)
        backend = future.result(10)
        self.backends.append(backend)
        return backend

    def close(self) -> None:
        async def stop() -> None:
            for backend in self.backends:
                await backend.stop()
            await self.loop.shutdown_asyncgens()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def backend_loop() -> Iterator[BackendLoop]:
    loop = BackendLoop()
    try:
        yield loop
    finally:
        loop.close()


def shop_and_web(loop: BackendLoop, web: dict[str, int] | None = None) -> dict[str, Any]:
    """A configuration of one backend per pool (stable, canary, blue, green) behind two routes:
    `shop`, blue-green on /shop (active blue), and `web`, the split `web` (default 90/10)."""
    backends = {name: loop.start(name) for name in ("stable", "canary", "blue", "green")}
    return config(
        {name: [backend.url] for name, backend in backends.items()},
        {
            "shop": {
                "path_prefix": "/shop",
                "mode": "blue-green",
                "pools": ["blue", "green"],
                "active": "blue",
            },
            "web": {"weights": web or {"stable": 90, "canary": 10}},
        },
    )


def send(
    port: int,
    count: int,
    path: str = "/",
    connections: int = 4,
    headers: dict[str, str] | None = None,
) -> Counter[str]:
    """`count` GETs through the proxy over `connections` keep-alive connections; which backend
    answered (its name, the body) how often. Every answer must be a 200."""
    clients = [
        http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(connections)
    ]
    seen: Counter[str] = Counter()
    try:
        for index in range(count):
            client = clients[index % connections]
            client.request("GET", path, headers=headers or {})
            response = client.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            seen[body] += 1
    finally:
        for client in clients:
            client.close()
    return seen


def with_ports(data: dict[str, Any], workers: int = 1) -> dict[str, Any]:
    """`data` with free listen and admin ports and the worker count, as proxy_process does."""
    return {
        **data,
        "listen": {**data.get("listen", {}), "port": free_port()},
        "admin": {**data.get("admin", {}), "port": free_port()},
        "process": {"workers": workers, **data.get("process", {})},
    }


def launch(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """`turnout run` on a configuration file, its log (stderr) into a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_")}
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [TURNOUT, "--log-level", "debug", "run", "--config", str(config_path)],
            env=env,
            stderr=log,
        )


@contextlib.contextmanager
def turnout_in(directory: Path, data: dict[str, Any], log_name: str) -> Iterator[ProxyProcess]:
    """`turnout run` on `directory`/turnout.toml, written from `data` (which carries its ports,
    see with_ports): unlike proxy_process, the directory (and so the state file next to the
    configuration) outlives the process, for restarts. Stopped with SIGTERM on exit."""
    path = directory / "turnout.toml"
    path.write_text(toml(data))
    log_path = directory / log_name
    process = launch(path, log_path)
    running = ProxyProcess(process, data["listen"]["port"], data["admin"]["port"], path, log_path)
    try:
        wait_until_ready(running)
        yield running
    finally:
        status = running.stop()
        assert status == 0, f"turnout exited with {status}: {running.log()}"


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
