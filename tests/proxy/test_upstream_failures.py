"""When backends fail: what the client gets, what is retried, and what is never sent twice.

Every backend here is real: aiohttp servers, raw asyncio servers for byte-level misbehaviour
(resets, truncated bodies, garbage), and closed ports for dead backends. The rules under test are
exchange.py's: connect failures go to another backend; a reused keep-alive connection the backend
closed before answering is retried once on a fresh one, and a fresh one closed so goes to another
backend, both for idempotent requests only; timeouts never are; once
the status line has gone out, a failure closes the client connection instead of inventing a
second status.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helpers import (
    Backend,
    RawBackend,
    RawHandler,
    config,
    exchange_raw,
    free_port,
    parse_responses,
    read_request_head,
    running_proxy,
    start_backend,
    start_raw_backend,
)
from proxy.server import ProxyServer

PROBLEM = "urn:turnout:problem:"
UPSTREAM = {"read_timeout": 0.3, "connect_timeout": 0.5}
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=5)


# Helpers


def proxy_config(
    pools: dict[str, list[str]], upstream: dict[str, Any] | None = None, **route: Any
) -> dict[str, Any]:
    """One catch-all route splitting evenly over `pools`, with short upstream timeouts."""
    routes = {"all": {"weights": dict.fromkeys(pools, 1), **route}}
    return config(pools, routes, upstream={**UPSTREAM, **(upstream or {})})


async def read_problem(response: aiohttp.ClientResponse, status: int, slug: str) -> dict[str, Any]:
    """Assert `response` is the RFC 9457 document for `slug` and return it."""
    assert response.status == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(await response.read())
    assert problem["type"] == PROBLEM + slug
    assert problem["status"] == status
    return problem


def raw_problem(data: bytes, status: int, slug: str) -> dict[str, Any]:
    [(got, headers, body)] = parse_responses(data)
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(body)
    assert problem["type"] == PROBLEM + slug
    assert problem["status"] == status
    return problem


async def assert_no_inflight(proxy: ProxyServer) -> None:
    """Every backend's in-flight count is back to zero (the balancer relies on it)."""
    await asyncio.sleep(0.05)
    assert proxy.dataplane is not None
    leaked = {key: t.inflight for key, t in proxy.dataplane.targets.items() if t.inflight}
    assert leaked == {}


def idle_count(proxy: ProxyServer, backend: RawBackend) -> int:
    assert proxy.dataplane is not None
    return len(proxy.dataplane.connection_pools[("127.0.0.1", backend.port)].idle)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request head and its Content-Length body, as a backend reads them."""
    head = await read_request_head(reader)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return head, body


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN (SO_LINGER with a zero timeout)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend | RawBackend]]:
    """Backends a test starts go here and are always stopped."""
    started: list[Backend | RawBackend] = []
    yield started
    for backend in started:
        await backend.stop()


async def raw(started: list[Backend | RawBackend], handler: RawHandler) -> RawBackend:
    backend = await start_raw_backend(handler)
    started.append(backend)
    return backend


async def aio(started: list[Backend | RawBackend], name: str, handler: Any = None) -> Backend:
    backend = await start_backend(name, handler)
    started.append(backend)
    return backend


# 1. Connect failures


async def test_dead_only_backend_gives_502_connect_failed() -> None:
    data = proxy_config({"web": [f"http://127.0.0.1:{free_port()}"]})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        url = f"http://127.0.0.1:{proxy.port}/x"
        async with s.get(url, headers={"X-Request-Id": "req-dead-1"}) as response:
            problem = await read_problem(response, 502, "upstream-connect-failed")
            assert problem["requestId"] == "req-dead-1"
            assert response.headers["Cache-Control"] == "no-store"
        # An upstream failure is not the client's fault: its connection stays usable.
        async with s.get(url) as response:
            await read_problem(response, 502, "upstream-connect-failed")
        await assert_no_inflight(proxy)


async def test_every_backend_dead_gives_502_after_trying_each(
    backends: list[Backend | RawBackend],
) -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    data = proxy_config({"web": dead}, upstream={"retries": 5})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for _ in range(5):
            async with s.post(f"http://127.0.0.1:{proxy.port}/", data=b"body") as response:
                problem = await read_problem(response, 502, "upstream-connect-failed")
                assert "refused" in problem["detail"]
        await assert_no_inflight(proxy)


async def test_connect_failure_is_retried_on_the_alive_backend(
    backends: list[Backend | RawBackend],
) -> None:
    alive = await aio(backends, "alive")
    dead = f"http://127.0.0.1:{free_port()}"
    data = proxy_config({"web": [dead, alive.url]}, upstream={"retries": 1})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for i in range(50):
            # POST too: nothing reached the dead backend, so a retry duplicates nothing.
            async with s.post(f"http://127.0.0.1:{proxy.port}/n/{i}", data=b"%d" % i) as response:
                assert response.status == 200
                assert await response.text() == "alive"
                assert response.headers["X-Backend"] == "alive"
        await assert_no_inflight(proxy)
    assert [seen.path for seen in alive.seen] == [f"/n/{i}" for i in range(50)]
    assert [seen.body for seen in alive.seen] == [b"%d" % i for i in range(50)]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_connect_retry_carries_a_large_body_whole(
    backends: list[Backend | RawBackend], chunked: bool
) -> None:
    alive = await aio(backends, "alive")
    dead = f"http://127.0.0.1:{free_port()}"
    data = proxy_config({"web": []}, upstream={"retries": 1})
    # The dead backend is weighted so that nearly every request tries it first.
    data["pools"]["web"]["backends"] = [
        {"name": "dead", "url": dead, "weight": 1000},
        {"name": "alive", "url": alive.url, "weight": 1},
    ]
    # Larger than what the proxy buffers while no backend connection exists, so reading from
    # the client pauses during the failed connect and must resume on the retry.
    body = bytes(range(256)) * 1200

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 50_000):
            yield body[start : start + 50_000]

    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for i in range(6):
            async with s.put(
                f"http://127.0.0.1:{proxy.port}/up/{i}",
                data=chunks() if chunked else body,
                headers={"X-Request-Id": f"up-{i}"},
            ) as response:
                assert response.status == 200
                assert await response.text() == "alive"
        await assert_no_inflight(proxy)
    assert [seen.path for seen in alive.seen] == [f"/up/{i}" for i in range(6)]
    for i, seen in enumerate(alive.seen):
        assert seen.body == body
        assert seen.all("X-Request-Id") == [f"up-{i}"]


async def test_without_retries_a_dead_backend_fails_some_requests(
    backends: list[Backend | RawBackend],
) -> None:
    alive = await aio(backends, "alive")
    dead = f"http://127.0.0.1:{free_port()}"
    data = proxy_config({"web": [dead, alive.url]}, upstream={"retries": 0})
    served: list[int] = []
    failed: list[int] = []
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for i in range(50):
            async with s.get(f"http://127.0.0.1:{proxy.port}/n/{i}") as response:
                if response.status == 200:
                    assert await response.text() == "alive"
                    served.append(i)
                else:
                    await read_problem(response, 502, "upstream-connect-failed")
                    failed.append(i)
        await assert_no_inflight(proxy)
    # The picker draws the dead backend about half the time (the chance of either list
    # being empty is 2 * 2**-50).
    assert served
    assert failed
    # Each request reached the alive backend at most once, and only those that succeeded.
    assert [seen.path for seen in alive.seen] == [f"/n/{i}" for i in served]


async def test_connect_timeout_gives_504_and_is_retried(
    backends: list[Backend | RawBackend],
) -> None:
    # A listener that never accepts, its accept queue filled: the kernel drops further SYNs,
    # so connecting hangs until the proxy's connect timeout.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(blackhole.getsockname())
            fillers.append(filler)
        await asyncio.sleep(0.05)
        url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        alive = await aio(backends, "alive")
        upstream = {"connect_timeout": 0.2, "retries": 0}
        async with running_proxy(proxy_config({"web": [url]}, upstream)) as proxy:
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
                started = time.monotonic()
                async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    await read_problem(response, 504, "upstream-connect-timeout")
                assert time.monotonic() - started < 1.0
            await assert_no_inflight(proxy)
        upstream = {"connect_timeout": 0.2, "retries": 1}
        async with running_proxy(proxy_config({"web": [url, alive.url]}, upstream)) as proxy:
            async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
                for _ in range(4):
                    async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                        assert response.status == 200
                        assert await response.text() == "alive"
            await assert_no_inflight(proxy)
        assert len(alive.seen) == 4
    finally:
        for filler in fillers:
            filler.close()
        blackhole.close()


# 2. Timeouts


async def test_slow_response_gives_504_and_is_not_retried(
    backends: list[Backend | RawBackend],
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(text="too late")

    # Two slow backends: a retry would have somewhere to go, and would show up in `seen`.
    first, second = await aio(backends, "one", slow), await aio(backends, "two", slow)
    data = proxy_config({"web": [first.url, second.url]}, upstream={"retries": 3})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        started = time.monotonic()
        async with s.get(f"http://127.0.0.1:{proxy.port}/slow") as response:
            problem = await read_problem(response, 504, "upstream-timeout")
            assert "0.3" in problem["detail"]
        elapsed = time.monotonic() - started
        assert 0.3 <= elapsed < 1.0
        await assert_no_inflight(proxy)
    assert len(first.seen) + len(second.seen) == 1


def stall_after(head: bytes, first_bytes: bytes, seen: list[bytes]) -> RawHandler:
    """A backend that sends `head` and `first_bytes`, then says nothing until closed."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request_head(reader))
        writer.write(head + first_bytes)
        await writer.drain()
        await reader.read()  # until the proxy gives up on us

    return handler


async def test_stall_mid_body_closes_the_client_connection(
    backends: list[Backend | RawBackend],
) -> None:
    seen: list[bytes] = []
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
    backend = await raw(backends, stall_after(head, b"x" * 10, seen))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            started = time.monotonic()
            async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                assert response.status == 200  # the status line went out before the stall
                assert response.headers["Content-Length"] == "100"
                with pytest.raises(aiohttp.ClientPayloadError):
                    await response.read()
            assert time.monotonic() - started < 1.5

        # The same, byte by byte: one status line, a truncated body, then the close.
        data = await exchange_raw(proxy.port, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        assert data.count(b"HTTP/1.") == 1
        response_head, _, body = data.partition(b"\r\n\r\n")
        assert response_head.startswith(b"HTTP/1.1 200 ")
        assert body == b"x" * 10
        await assert_no_inflight(proxy)
    assert len(seen) == 2
    assert backend.connections == 2  # the stalled connection was not reused


async def test_stall_mid_chunked_body_never_ends_the_chunked_stream(
    backends: list[Backend | RawBackend],
) -> None:
    seen: list[bytes] = []
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    backend = await raw(backends, stall_after(head, b"5\r\nhello\r\n", seen))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        data = await exchange_raw(proxy.port, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        assert data.count(b"HTTP/1.") == 1
        response_head, _, body = data.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in response_head
        # The chunk that arrived, and no last chunk: the client can tell it was cut short.
        assert body == b"5\r\nhello\r\n"
        await assert_no_inflight(proxy)
    assert len(seen) == 1


# 3. No eligible backend


def with_backend_states(
    data: dict[str, Any], pool: str, urls: list[str], states: list[str]
) -> dict[str, Any]:
    data["pools"][pool] = {
        "backends": [
            {"name": f"{pool}-{i + 1}", "url": url, "admin_state": state}
            for i, (url, state) in enumerate(zip(urls, states, strict=True))
        ]
    }
    return data


@pytest.mark.parametrize("state", ["maint", "drain"])
async def test_no_ready_backend_gives_503(backends: list[Backend | RawBackend], state: str) -> None:
    one, two = await aio(backends, "one"), await aio(backends, "two")
    data = with_backend_states(
        proxy_config({"blue": []}), "blue", [one.url, two.url], [state, state]
    )
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
            problem = await read_problem(response, 503, "no-eligible-backend")
            assert "blue" in problem["detail"]
        await assert_no_inflight(proxy)
    assert one.seen == []
    assert two.seen == []


async def test_no_ready_backend_uses_the_fallback_pool(
    backends: list[Backend | RawBackend],
) -> None:
    blue, green = await aio(backends, "blue"), await aio(backends, "green")
    data = proxy_config({"blue": [], "green": [green.url]}, fallback_pool="green")
    data["routes"]["all"]["weights"] = {"blue": 1}
    with_backend_states(data, "blue", [blue.url], ["maint"])
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for _ in range(5):
            async with s.get(f"http://127.0.0.1:{proxy.port}/f") as response:
                assert response.status == 200
                assert await response.text() == "green"
        await assert_no_inflight(proxy)
    assert blue.seen == []
    assert len(green.seen) == 5


async def test_pool_without_backends_gives_503() -> None:
    async with running_proxy(proxy_config({"empty": []})) as proxy:
        data = await exchange_raw(
            proxy.port, b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
        )
        problem = raw_problem(data, 503, "no-eligible-backend")
        assert "empty" in problem["detail"]
        await assert_no_inflight(proxy)


# 4. The backend closes before answering a request it received


def close_before_answering(seen: list[bytes], *, rst: bool) -> RawHandler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        seen.append(head + body)
        if rst:
            reset(writer)
        # else: the harness closes the connection (FIN) when the handler returns

    return handler


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_post_closed_before_response_gives_502_and_is_not_retried(
    backends: list[Backend | RawBackend], rst: bool
) -> None:
    seen: list[bytes] = []
    # Two such backends and retries enabled: a retry would have somewhere to go.
    first = await raw(backends, close_before_answering(seen, rst=rst))
    second = await raw(backends, close_before_answering(seen, rst=rst))
    data = proxy_config({"web": [first.url, second.url]}, upstream={"retries": 3})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.post(f"http://127.0.0.1:{proxy.port}/orders", data=b"pay 10") as response:
            await read_problem(response, 502, "upstream-reset")
        await assert_no_inflight(proxy)
    assert len(seen) == 1
    assert seen[0].startswith(b"POST /orders HTTP/1.1\r\n")
    assert seen[0].endswith(b"\r\n\r\npay 10")
    assert first.connections + second.connections == 1


async def test_post_reset_next_to_a_healthy_backend_is_never_sent_twice(
    backends: list[Backend | RawBackend],
) -> None:
    seen: list[bytes] = []
    broken = await raw(backends, close_before_answering(seen, rst=True))
    alive = await aio(backends, "alive")
    data = proxy_config({"web": [broken.url, alive.url]}, upstream={"retries": 1})
    statuses: list[int] = []
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for i in range(30):
            async with s.post(f"http://127.0.0.1:{proxy.port}/p/{i}", data=b"x") as response:
                if response.status == 502:
                    await read_problem(response, 502, "upstream-reset")
                else:
                    assert response.status == 200
                    assert await response.text() == "alive"
                statuses.append(response.status)
        await assert_no_inflight(proxy)
    # Every request reached exactly one backend, and failed exactly when that one was broken.
    assert statuses.count(502) == len(seen) > 0
    assert statuses.count(200) == len(alive.seen) > 0
    assert len(seen) + len(alive.seen) == 30


def answer_ok(seen: list[bytes]) -> RawHandler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, body = await read_request(reader)
            seen.append(head + body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    return handler


@pytest.mark.parametrize("rst", [False, True], ids=["fin", "rst"])
async def test_idempotent_request_closed_before_response_goes_to_another_backend(
    backends: list[Backend | RawBackend], rst: bool
) -> None:
    """As nginx's `proxy_next_upstream error`: a GET or PUT may be repeated (RFC 9110 §9.2.2),
    so one a backend closed unanswered on a fresh connection goes to the next, body and all."""
    lost: list[bytes] = []
    served: list[bytes] = []
    broken = await raw(backends, close_before_answering(lost, rst=rst))
    alive = await raw(backends, answer_ok(served))
    data = proxy_config({"web": [broken.url, alive.url]}, upstream={"retries": 1})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for i in range(20):
            async with s.put(f"http://127.0.0.1:{proxy.port}/doc/{i}", data=b"v%d" % i) as r:
                assert r.status == 200
                assert await r.read() == b"ok"
        await assert_no_inflight(proxy)
    assert lost  # some went to the broken one first
    assert len(served) == 20
    for i, request in enumerate(served):
        assert request.startswith(b"PUT /doc/%d HTTP/1.1\r\n" % i)
        assert request.endswith(b"\r\n\r\nv%d" % i)
    assert {request.split(b" ")[1] for request in lost} <= {b"/doc/%d" % i for i in range(20)}


@pytest.mark.parametrize("retries", [0, 3])
async def test_idempotent_request_closed_by_every_backend_is_tried_on_each_once(
    backends: list[Backend | RawBackend], retries: int
) -> None:
    seen: list[bytes] = []
    first = await raw(backends, close_before_answering(seen, rst=True))
    second = await raw(backends, close_before_answering(seen, rst=False))
    data = proxy_config({"web": [first.url, second.url]}, upstream={"retries": retries})
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.get(f"http://127.0.0.1:{proxy.port}/page") as response:
            await read_problem(response, 502, "upstream-reset")
        await assert_no_inflight(proxy)
    # Without retries the one backend picked; with them each backend once, never one twice.
    assert len(seen) == (1 if retries == 0 else 2)
    assert first.connections + second.connections == len(seen)


# 5. The backend closes mid-response


def close_after(response: bytes) -> RawHandler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        writer.write(response)
        await writer.drain()

    return handler


async def test_close_mid_body_closes_the_client_connection(
    backends: list[Backend | RawBackend],
) -> None:
    partial = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Part: 1\r\n\r\n" + b"y" * 300
    backend = await raw(backends, close_after(partial))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with (
            aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s,
            s.get(f"http://127.0.0.1:{proxy.port}/") as response,
        ):
            assert response.status == 200
            assert response.headers["X-Part"] == "1"
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()

        # Two pipelined requests: the first response is cut short, so the second is never
        # answered on this connection (its bytes would be read as the first one's body).
        request = b"GET /a HTTP/1.1\r\nHost: app\r\n\r\nGET /b HTTP/1.1\r\nHost: app\r\n\r\n"
        data = await exchange_raw(proxy.port, request)
        assert data.count(b"HTTP/1.") == 1
        response_head, _, body = data.partition(b"\r\n\r\n")
        assert b"Content-Length: 1000" in response_head
        assert body == b"y" * 300
        await assert_no_inflight(proxy)
    assert backend.connections == 2


async def test_close_mid_chunked_body_closes_the_client_connection(
    backends: list[Backend | RawBackend],
) -> None:
    partial = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\nde"
    backend = await raw(backends, close_after(partial))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with (
            aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s,
            s.get(f"http://127.0.0.1:{proxy.port}/") as response,
        ):
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        data = await exchange_raw(proxy.port, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        assert data.count(b"HTTP/1.") == 1
        _, _, body = data.partition(b"\r\n\r\n")
        assert body.startswith(b"3\r\nabc\r\n")
        assert b"0\r\n\r\n" not in body
        await assert_no_inflight(proxy)


async def test_close_delimited_body_is_complete_not_an_error(
    backends: list[Backend | RawBackend],
) -> None:
    # RFC 9112 §6.3 rule 8: without Content-Length or chunked, the close *is* the end.
    whole = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 5000
    backend = await raw(backends, close_after(whole))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            for _ in range(2):
                async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
                    assert response.status == 200
                    assert response.headers["Transfer-Encoding"] == "chunked"
                    assert await response.read() == b"z" * 5000
        await assert_no_inflight(proxy)
    assert backend.connections == 2


# 6. Invalid responses


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok",
        b"\x00\x17garbage that is not HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["bad-status", "garbage", "double-content-length", "head-too-large"],
)
async def test_invalid_response_gives_502_bad_response(
    backends: list[Backend | RawBackend], answer: bytes
) -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request_head(reader))
        writer.write(answer)
        await writer.drain()
        await reader.read()

    first, second = await raw(backends, handler), await raw(backends, handler)
    upstream = {"retries": 3, "max_response_header_bytes": 1024}
    data = proxy_config({"web": [first.url, second.url]}, upstream=upstream)
    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.get(f"http://127.0.0.1:{proxy.port}/") as response:
            problem = await read_problem(response, 502, "upstream-bad-response")
            assert problem["title"] == "Backend sent an invalid response"
        await assert_no_inflight(proxy)
    assert len(seen) == 1  # not retried: the backend may have acted on the request


async def test_invalid_body_after_the_status_line_closes_instead_of_a_502(
    backends: list[Backend | RawBackend],
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"not-a-chunk-size\r\n")  # the parser rejects the body mid-way
        await reader.read()

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        started = time.monotonic()
        data = await exchange_raw(proxy.port, b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        assert time.monotonic() - started < 0.3  # closed at once, not by a timeout
        assert data.count(b"HTTP/1.") == 1
        assert b"problem" not in data
        response_head, _, body = data.partition(b"\r\n\r\n")
        assert response_head.startswith(b"HTTP/1.1 200 ")
        assert body == b"3\r\nabc\r\n"
        await assert_no_inflight(proxy)
    assert backend.connections == 1


# 8. A reused keep-alive connection the backend had closed


def serve_one_then_close_on_next(heads: list[bytes]) -> RawHandler:
    """Answer the first request on each connection (keep-alive), then, when the next request
    arrives, close without answering: the race a pooled connection loses in production."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        heads.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
        await writer.drain()
        heads.append(await read_request_head(reader))
        # closed here without a response (by the harness, when the handler returns)

    return handler


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
async def test_stale_keepalive_connection_is_retried_for_idempotent_requests(
    backends: list[Backend | RawBackend], method: str
) -> None:
    heads: list[bytes] = []
    backend = await raw(backends, serve_one_then_close_on_next(heads))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            async with s.get(f"http://127.0.0.1:{proxy.port}/warm") as response:
                assert await response.read() == b"first"
            body = b"same" if method == "PUT" else None
            url = f"http://127.0.0.1:{proxy.port}/again"
            async with s.request(method, url, data=body) as response:
                assert response.status == 200
                assert await response.read() == (b"" if method == "HEAD" else b"first")
        await assert_no_inflight(proxy)
    assert backend.connections == 2
    # warm on connection 1; the request on (stale) connection 1; the retry on connection 2.
    assert [head.split(b" ")[:2] for head in heads] == [
        [b"GET", b"/warm"],
        [method.encode(), b"/again"],
        [method.encode(), b"/again"],
    ]


async def test_stale_keepalive_connection_replays_the_request_body(
    backends: list[Backend | RawBackend],
) -> None:
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        bodies.append(body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_request(reader)  # the whole request, then close: only a retry can answer

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            url = f"http://127.0.0.1:{proxy.port}/doc"
            async with s.put(url, data=b"version 1") as response:
                assert response.status == 200
            async with s.put(url, data=b"version 2" * 1000) as response:
                assert response.status == 200
                assert await response.read() == b"ok"
        await assert_no_inflight(proxy)
    assert bodies == [b"version 1", b"version 2" * 1000]
    assert backend.connections == 2


async def test_stale_keepalive_connection_is_not_retried_for_post(
    backends: list[Backend | RawBackend],
) -> None:
    heads: list[bytes] = []
    backend = await raw(backends, serve_one_then_close_on_next(heads))
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            async with s.get(f"http://127.0.0.1:{proxy.port}/warm") as response:
                assert await response.read() == b"first"
            async with s.post(f"http://127.0.0.1:{proxy.port}/pay", data=b"10") as response:
                await read_problem(response, 502, "upstream-reset")
        await assert_no_inflight(proxy)
    assert backend.connections == 1
    assert [head.split(b" ")[:2] for head in heads] == [[b"GET", b"/warm"], [b"POST", b"/pay"]]


async def test_stale_keepalive_connection_is_not_retried_past_the_replay_limit(
    backends: list[Backend | RawBackend],
) -> None:
    bodies: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        bodies.append(len(body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        _, body = await read_request(reader)  # all of it, then close without answering
        bodies.append(len(body))

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            url = f"http://127.0.0.1:{proxy.port}/doc"
            async with s.put(url, data=b"small") as response:
                assert response.status == 200
            # More than the proxy keeps for a replay (REPLAY_LIMIT, 64 KiB): not retried.
            async with s.put(url, data=b"L" * 100_000) as response:
                await read_problem(response, 502, "upstream-reset")
        await assert_no_inflight(proxy)
    assert bodies == [5, 100_000]
    assert backend.connections == 1


async def test_stale_retry_happens_only_once(backends: list[Backend | RawBackend]) -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request_head(reader))
        if len(heads) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            heads.append(await read_request_head(reader))
        # every later request: closed without an answer

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            async with s.get(f"http://127.0.0.1:{proxy.port}/warm") as response:
                assert await response.read() == b"ok"
            async with s.get(f"http://127.0.0.1:{proxy.port}/again") as response:
                await read_problem(response, 502, "upstream-reset")
        await assert_no_inflight(proxy)
    # The stale connection, then one fresh connection that also failed: no third attempt.
    assert backend.connections == 2
    assert len(heads) == 3


async def test_backend_closing_an_idle_connection_is_noticed(
    backends: list[Backend | RawBackend],
) -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request_head(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then close, without having said Connection: close

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
            for _ in range(3):
                async with s.post(f"http://127.0.0.1:{proxy.port}/", data=b"x") as response:
                    assert response.status == 200  # even a POST: the dead one was discarded
                    assert await response.read() == b"ok"
                await asyncio.sleep(0.2)
        await assert_no_inflight(proxy)
    # Each request went out once, each on a new connection.
    assert len(heads) == 3
    assert backend.connections == 3


# 11. In-flight counts after every kind of failure


async def test_client_leaving_during_a_slow_response_releases_the_backend(
    backends: list[Backend | RawBackend],
) -> None:
    events: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        events.append("request")
        assert await reader.read() == b""  # the proxy closed the upstream connection
        events.append("closed")

    backend = await raw(backends, handler)
    async with running_proxy(proxy_config({"web": [backend.url]})) as proxy:
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET /wait HTTP/1.1\r\nHost: app\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        assert proxy.dataplane is not None
        assert [t.inflight for t in proxy.dataplane.targets.values()] == [1]
        # A reset, not a FIN: a half-closed client may still be waiting for its response.
        reset(writer)
        await asyncio.sleep(0.1)
        assert events == ["request", "closed"]
        await assert_no_inflight(proxy)
        assert idle_count(proxy, backend) == 0


async def test_inflight_counts_return_to_zero_after_failures(
    backends: list[Backend | RawBackend],
) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(2)
        return web.Response(text="late")

    seen: list[bytes] = []
    stale_heads: list[bytes] = []
    slow_backend = await aio(backends, "slow", slow)
    alive = await aio(backends, "alive")
    garbage = await raw(backends, close_after(b"NOT HTTP\r\n\r\n"))
    resetting = await raw(backends, close_before_answering(seen, rst=True))
    truncating = await raw(backends, close_after(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"))
    stalling = await raw(
        backends, stall_after(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", b"ab", seen)
    )
    stale = await raw(backends, serve_one_then_close_on_next(stale_heads))
    dead = f"http://127.0.0.1:{free_port()}"
    pools = {
        "dead": [dead],
        "deadpair": [dead, alive.url],
        "slow": [slow_backend.url],
        "garbage": [garbage.url],
        "reset": [resetting.url],
        "truncating": [truncating.url],
        "stalling": [stalling.url],
        "stale": [stale.url],
    }
    routes = {name: {"path_prefix": f"/{name}", "weights": {name: 1}} for name in pools}
    data = config(pools, routes, upstream=UPSTREAM)
    expected = {
        "dead": 502,
        "deadpair": 200,
        "slow": 504,
        "garbage": 502,
        "reset": 502,
        "truncating": 200,
        "stalling": 200,
        "stale": 200,
    }

    async def one(session: aiohttp.ClientSession, name: str, method: str = "GET") -> int:
        async with session.request(method, f"http://127.0.0.1:{proxy.port}/{name}") as response:
            try:
                await response.read()
            except aiohttp.ClientPayloadError:
                assert name in ("truncating", "stalling")
            return response.status

    async with running_proxy(data) as proxy, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        assert await one(s, "stale") == 200  # warms a connection that the next request finds dead
        statuses = await asyncio.gather(*(one(s, name) for name in expected))
        assert dict(zip(expected, statuses, strict=True)) == expected
        assert await one(s, "stale", "POST") == 502  # stale, not retried
        await assert_no_inflight(proxy)
        assert proxy.dataplane is not None
        assert len(proxy.dataplane.targets) == len(pools) + 1  # deadpair has two
