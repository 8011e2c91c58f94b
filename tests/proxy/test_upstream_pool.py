"""Upstream keep-alive: connections are reused, opened as concurrency needs, and dropped when
they can no longer be trusted to be at a message boundary.

The pool caps how many *idle* connections it keeps (`keepalive_per_backend`), never how many can
be open at once. Backends here count the connections they accept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helpers import (
    Backend,
    RawBackend,
    RawHandler,
    config,
    read_request_head,
    running_proxy,
    start_backend,
    start_raw_backend,
)
from proxy.server import ProxyServer

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=5)


def proxy_config(urls: list[str], **upstream: Any) -> dict[str, Any]:
    settings = {"read_timeout": 2.0, "connect_timeout": 0.5, **upstream}
    return config({"web": urls}, {"all": {"weights": {"web": 1}}}, upstream=settings)


@dataclass
class Stats:
    """What a raw keep-alive backend saw."""

    requests: list[tuple[int, bytes]] = field(default_factory=list)
    """(connection number, request line) for every request."""
    active: int = 0
    max_active: int = 0
    closed_by_peer: int = 0
    """Connections the proxy closed (EOF while waiting for a request)."""


def keepalive_backend(
    stats: Stats, *, delay: float = 0.0, extra_head: bytes = b"", trailing: bytes = b""
) -> RawHandler:
    """An HTTP/1.1 backend that answers every request on a connection with a Content-Length
    response, in a loop, until the peer closes. `trailing` is sent 50 ms after each response
    (bytes an idle connection should never carry)."""
    counter = [0]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter[0] += 1
        number = counter[0]
        while True:
            try:
                head = await read_request_head(reader)
            except asyncio.IncompleteReadError:
                stats.closed_by_peer += 1
                return
            stats.requests.append((number, head.split(b"\r\n", 1)[0]))
            stats.active += 1
            stats.max_active = max(stats.max_active, stats.active)
            try:
                if delay:
                    await asyncio.sleep(delay)
                body = b"conn %d" % number
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s"
                    % (len(body), extra_head, body)
                )
                await writer.drain()
            finally:
                stats.active -= 1
            if trailing:
                await asyncio.sleep(0.05)
                writer.write(trailing)

    return handler


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend | RawBackend]]:
    started: list[Backend | RawBackend] = []
    yield started
    for backend in started:
        await backend.stop()


async def raw(started: list[Backend | RawBackend], handler: RawHandler) -> RawBackend:
    backend = await start_raw_backend(handler)
    started.append(backend)
    return backend


def idle_count(proxy: ProxyServer, backend: Backend | RawBackend) -> int:
    assert proxy.dataplane is not None
    return len(proxy.dataplane.connection_pools[("127.0.0.1", backend.port)].idle)


async def assert_no_inflight(proxy: ProxyServer) -> None:
    await asyncio.sleep(0.05)
    assert proxy.dataplane is not None
    assert [t.inflight for t in proxy.dataplane.targets.values()] == [0] * len(
        proxy.dataplane.targets
    )


# 7. Reuse and concurrency


async def test_sequential_requests_reuse_one_upstream_connection(
    backends: list[Backend | RawBackend],
) -> None:
    stats = Stats()
    backend = await raw(backends, keepalive_backend(stats))
    async with running_proxy(proxy_config([backend.url])) as proxy:
        connector = aiohttp.TCPConnector(limit=1)  # one client connection, too
        async with aiohttp.ClientSession(connector=connector, timeout=CLIENT_TIMEOUT) as s:
            for i in range(100):
                async with s.get(f"http://127.0.0.1:{proxy.port}/r/{i}") as response:
                    assert response.status == 200
                    assert await response.read() == b"conn 1"
        assert idle_count(proxy, backend) == 1
        await assert_no_inflight(proxy)
    assert backend.connections == 1
    assert [line for _, line in stats.requests] == [b"GET /r/%d HTTP/1.1" % i for i in range(100)]


async def test_aiohttp_backend_sees_one_connection_for_mixed_requests(
    backends: list[Backend | RawBackend],
) -> None:
    peers: list[int] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername")[1])
        body = await request.read()
        if request.path == "/stream":
            response = web.StreamResponse()  # chunked
            await response.prepare(request)
            await response.write(b"part1,")
            await response.write(b"part2")
            await response.write_eof()
            return response
        return web.Response(body=b"echo:" + body)

    backend = await start_backend("aio", handler)
    backends.append(backend)
    async with running_proxy(proxy_config([backend.url])) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            base = f"http://127.0.0.1:{proxy.port}"
            for i in range(20):
                async with s.post(f"{base}/p", data=b"%d" % i) as response:
                    assert await response.read() == b"echo:%d" % i
                async with s.get(f"{base}/stream") as response:
                    assert await response.read() == b"part1,part2"
                async with s.head(f"{base}/h") as response:
                    assert response.status == 200
        await assert_no_inflight(proxy)
    assert len(peers) == 60
    assert len(set(peers)) == 1


async def test_concurrent_clients_get_concurrent_upstream_connections(
    backends: list[Backend | RawBackend],
) -> None:
    stats = Stats()
    backend = await raw(backends, keepalive_backend(stats, delay=0.2))
    async with running_proxy(proxy_config([backend.url], keepalive_per_backend=5)) as proxy:

        async def client(i: int) -> bytes:
            async with (
                aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s,
                s.get(f"http://127.0.0.1:{proxy.port}/c/{i}") as response,
            ):
                assert response.status == 200
                return await response.read()

        started = time.monotonic()
        bodies = await asyncio.gather(*(client(i) for i in range(20)))
        elapsed = time.monotonic() - started
        # Serialised they would take 20 x 0.2 s; in parallel, about one delay.
        assert elapsed < 1.0
        assert stats.max_active == 20
        assert backend.connections == 20
        assert sorted(bodies) == sorted(b"conn %d" % n for n in range(1, 21))
        # The idle cap applies after the burst, not during it.
        assert idle_count(proxy, backend) == 5
        await asyncio.sleep(0.05)
        assert stats.closed_by_peer == 15

        # Five concurrent requests again: the five connections kept serve them, no new one.
        await asyncio.gather(*(client(i) for i in range(5)))
        assert backend.connections == 20
        assert idle_count(proxy, backend) == 5
        await assert_no_inflight(proxy)


# 10. keepalive_per_backend = 0


async def test_keepalive_per_backend_zero_opens_a_connection_per_request(
    backends: list[Backend | RawBackend],
) -> None:
    stats = Stats()
    backend = await raw(backends, keepalive_backend(stats))
    async with running_proxy(proxy_config([backend.url], keepalive_per_backend=0)) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            for i in range(10):
                async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    assert response.status == 200
                    assert await response.read() == b"conn %d" % (i + 1)
            for _ in range(5):
                async with s.post(f"http://127.0.0.1:{proxy.port}/", data=b"x") as response:
                    assert response.status == 200
        assert idle_count(proxy, backend) == 0
        await asyncio.sleep(0.05)
        await assert_no_inflight(proxy)
    assert backend.connections == 15
    # Every connection carried exactly one request and was then closed by the proxy.
    assert [number for number, _ in stats.requests] == list(range(1, 16))
    assert stats.closed_by_peer == 15


# When a connection must not be reused


@pytest.mark.parametrize(
    ("extra_head", "version"),
    [(b"Connection: close\r\n", b"1.1"), (b"", b"1.0")],
    ids=["connection-close", "http-1.0"],
)
async def test_backend_refusing_keepalive_gets_a_new_connection_each_time(
    backends: list[Backend | RawBackend], extra_head: bytes, version: bytes
) -> None:
    lines: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append((await read_request_head(reader)).split(b"\r\n", 1)[0])
        writer.write(b"HTTP/%s 200 OK\r\nContent-Length: 2\r\n%s\r\nok" % (version, extra_head))
        await writer.drain()
        await reader.read()  # leave closing to the proxy, as it was told to

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config([backend.url])) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            for _ in range(3):
                async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    assert response.status == 200
                    assert await response.read() == b"ok"
                    # The backend's Connection header is hop-by-hop: the client keeps its own.
                    assert "close" not in response.headers.get("Connection", "").lower()
        assert idle_count(proxy, backend) == 0
        await assert_no_inflight(proxy)
    assert backend.connections == 3
    assert lines == [b"GET / HTTP/1.1"] * 3


async def test_bytes_on_an_idle_connection_discard_it(
    backends: list[Backend | RawBackend],
) -> None:
    stats = Stats()
    # After each response, a stray response the proxy never asked for.
    stray = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"
    backend = await raw(backends, keepalive_backend(stats, trailing=stray))
    async with running_proxy(proxy_config([backend.url])) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            for i in range(3):
                async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    # Never the stray bytes of the connection before.
                    assert await response.read() == b"conn %d" % (i + 1)
                await asyncio.sleep(0.15)
                assert idle_count(proxy, backend) in (0, 1)
        await assert_no_inflight(proxy)
    assert backend.connections == 3
    assert [number for number, _ in stats.requests] == [1, 2, 3]


async def test_idle_connections_are_closed_after_the_idle_timeout(
    backends: list[Backend | RawBackend],
) -> None:
    stats = Stats()
    backend = await raw(backends, keepalive_backend(stats))
    data = proxy_config([backend.url], keepalive_idle_timeout=0.2, read_timeout=0.3)
    async with running_proxy(data) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                assert await response.read() == b"conn 1"
            assert idle_count(proxy, backend) == 1
            await asyncio.sleep(0.5)
            assert idle_count(proxy, backend) == 0
            assert stats.closed_by_peer == 1  # the proxy closed it, and the backend saw that
            async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                assert await response.read() == b"conn 2"
        await assert_no_inflight(proxy)
    assert backend.connections == 2
