"""What the observability tests share: scraping /metrics, a raw keep-alive HTTP client fast
enough for thousands of requests, backends on an event loop of their own, and the routing
helpers that pick cookie values landing in a given pool.

Nothing here is a mock: /metrics is served by a real `turnout run`, backends are aiohttp (or raw
asyncio) servers, and every request crosses a loopback socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from helpers import Backend, Handler, ProxyProcess, RawBackend, RawHandler, start_backend
from helpers import start_raw_backend as _start_raw_backend
from proxy.config import Settings
from router import RequestMeta, Snapshot, build_snapshot, decide

T = TypeVar("T")

Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]

# Scraping


@dataclass(frozen=True)
class Metrics:
    """One scrape of /metrics: every sample by (sample name, sorted labels)."""

    samples: dict[Key, float]
    raw: bytes = b""

    @classmethod
    def parse(cls, text: bytes) -> Metrics:
        samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                assert key not in samples, f"duplicate sample {key}"
                samples[key] = sample.value
        return cls(samples, text)

    def get(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted(labels.items())))]

    def value(self, name: str, default: float = 0.0, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def series(self, name: str, **where: str) -> dict[Labels, float]:
        """Every sample called `name` whose labels include `where`."""
        return {
            labels: value
            for (sample, labels), value in self.samples.items()
            if sample == name and all((k, v) in labels for k, v in where.items())
        }

    def by(self, name: str, *label_names: str, **where: str) -> dict[tuple[str, ...], float]:
        """`name`'s samples keyed by the values of `label_names` (the others must not vary)."""
        found: dict[tuple[str, ...], float] = {}
        for labels, value in self.series(name, **where).items():
            values = dict(labels)
            key = tuple(values[label] for label in label_names)
            assert key not in found, (name, key)
            found[key] = value
        return found

    def keys(self) -> set[Key]:
        return set(self.samples)


def scrape_sync(proxy: ProxyProcess, token: str | None = None) -> Metrics:
    status, _, body = get(proxy.admin_url + "/metrics", token)
    assert status == 200, (status, body[:500])
    return Metrics.parse(body)


async def scrape(proxy: ProxyProcess, token: str | None = None) -> Metrics:
    return await asyncio.to_thread(scrape_sync, proxy, token)


def get(url: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def admin_raw(
    proxy: ProxyProcess, method: str, path: str, body: bytes, content_type: str
) -> tuple[int, dict[str, str], Any]:
    """An admin call with a body sent as is: status, headers, decoded JSON."""
    request = urllib.request.Request(
        proxy.admin_url + path, data=body, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read() or b"null")


async def admin(proxy: ProxyProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(proxy.admin, method, path, body)


async def wait_for(
    condition: Callable[[], Awaitable[bool]], timeout: float = 10.0, step: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)


# A raw HTTP/1.1 client


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    """Lower-cased names; a repeated header keeps its last value."""
    body: bytes


class Client:
    """One keep-alive connection to the proxy; requests written byte for byte as given."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    async def send(self, request: bytes) -> Reply:
        self.writer.write(request)
        return await self.read()

    async def read(self) -> Reply:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = b""
        return Reply(status, headers, body)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def request(
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str = "example.test",
) -> bytes:
    """The bytes of one request (Content-Length framed when it has a body)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def fetch(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Reply:
    """One request on a connection of its own."""
    client = await Client.open(port)
    try:
        return await client.send(request(method, target, headers, body))
    finally:
        await client.close()


async def blast(port: int, requests: list[bytes], connections: int = 32) -> list[Reply]:
    """Send every request over `connections` keep-alive connections, one at a time on each
    (a new request once the previous answer is in); the replies in the requests' order."""
    replies: list[Reply | None] = [None] * len(requests)

    async def one(first: int) -> None:
        client = await Client.open(port)
        try:
            for index in range(first, len(requests), connections):
                replies[index] = await client.send(requests[index])
        finally:
            await client.close()

    await asyncio.gather(*(one(first) for first in range(min(connections, len(requests)))))
    assert all(reply is not None for reply in replies)
    return [reply for reply in replies if reply is not None]


# Backends on an event loop of their own


class BackendLoop:
    """Backends served by an event loop in a thread of their own: they keep answering while a
    test blocks (an admin call, a scrape), and a module-scoped fixture can own them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._stops: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def start(self, name: str, handler: Handler | None = None) -> Backend:
        backend = self.run(start_backend(name, handler))
        self._stops.append(backend.stop)
        return backend

    def start_raw(self, handler: RawHandler) -> RawBackend:
        backend = self.run(_start_raw_backend(handler))
        self._stops.append(backend.stop)
        return backend

    def close(self) -> None:
        async def stop() -> None:
            for stop_one in self._stops:
                await stop_one()
            await self.loop.shutdown_asyncgens()

        self.run(stop())
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


@dataclass
class Echo:
    """An aiohttp backend handler: reads the body, answers by the path's last segment (ok: 200,
    missing: 404, boom: 500, anything else: 200) with a body naming the backend, and records
    what it received."""

    name: str
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    """(method, path with query, headers (lower-cased names), body) of every request but
    health probes."""
    health: int = 200
    """What /healthz answers."""
    status: int | None = None
    """Answer every request with this status instead."""
    probes: int = 0

    async def __call__(self, request: web.Request) -> web.Response:
        if request.path == "/healthz":
            self.probes += 1
            return web.Response(status=self.health, text="ok")
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append((request.method, request.path_qs, headers, body))
        last = request.path.rsplit("/", 1)[-1]
        status = self.status or {"missing": 404, "boom": 500}.get(last, 200)
        return web.Response(status=status, text=self.name, headers={"X-Backend": self.name})


async def fast_backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A raw backend answering every bodiless request with a tiny 200, as fast as it can."""
    while True:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


# Routing, worked out with the proxy's own pure router


def snapshot_of(data: dict[str, Any]) -> Snapshot:
    return build_snapshot(Settings(**data).spec())


def cookies_for(
    snapshot: Snapshot,
    path: str,
    cookie: str,
    pool: str,
    count: int,
    prefix: str = "user",
) -> list[str]:
    """`count` sticky cookie values that send a request for `path` to `pool`."""
    found: list[str] = []
    index = 0
    while len(found) < count:
        value = f"{prefix}-{index}"
        index += 1
        decision = decide(RequestMeta("", path, {}, f"{cookie}={value}"), snapshot, 0)
        if decision.pool is not None and decision.pool.name == pool:
            found.append(value)
        assert index < 100_000
    return found


def parse_decision(header: str) -> dict[str, str]:
    """x-turnout-decision: `route=web rule=cookie pool=stable ...` as a dict."""
    return dict(part.split("=", 1) for part in header.split())
