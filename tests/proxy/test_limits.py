"""Limits on what a client may send and how long it may take: header count and size, target
length, slowloris, idle connections. Every limit answers before anything reaches a backend."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from helpers import Backend, config, exchange_raw, parse_responses, running_proxy

HEADER_TIMEOUT = 0.5
KEEPALIVE_TIMEOUT = 0.5
MAX_HEADER_BYTES = 2048
MAX_HEADERS = 10


def route_to(url: str, **downstream: float) -> dict[str, object]:
    limits: dict[str, float] = {
        "header_timeout": HEADER_TIMEOUT,
        "keepalive_timeout": KEEPALIVE_TIMEOUT,
        "max_header_bytes": MAX_HEADER_BYTES,
        "max_headers": MAX_HEADERS,
    }
    limits.update(downstream)
    return config(
        {"app": [url]},
        {"all": {"weights": {"app": 1}}},
        downstream=limits,
        upstream={"connect_timeout": 1.0, "read_timeout": 1.0},
    )


def assert_problem(answer: bytes, status: int, slug: str) -> None:
    """One problem document with `status`, and the connection closed after it."""
    responses = parse_responses(answer)
    assert len(responses) == 1, answer
    got, headers, body = responses[0]
    assert got == status, answer
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"].endswith(slug)


def request_with(headers: list[bytes], target: bytes = b"/") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


async def send_in_pieces(port: int, data: bytes, size: int) -> bytes:
    """Send `data` in `size`-byte packets while reading what the proxy answers; stop sending
    once it has answered, and return the answer once the proxy closes.

    Packets are paced (1 ms apart) so that the proxy has read each one before the next: the
    proxy closes without a lingering read, so bytes still unread when it closes would make the
    kernel reset the connection and destroy the answer (see RFC 9112 §9.6)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = bytearray()

    async def receive() -> None:
        with contextlib.suppress(ConnectionResetError):  # a packet crossed the proxy's close
            while chunk := await reader.read(65536):
                answer.extend(chunk)

    receiving = asyncio.create_task(receive())
    try:
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(data), size):
                if answer or receiving.done():
                    break
                writer.write(data[i : i + size])
                await writer.drain()
                await asyncio.sleep(0.001)
        await asyncio.wait_for(receiving, 2)
        return bytes(answer)
    finally:
        receiving.cancel()
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One Content-Length framed response: (head, body)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    [length] = [
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]
    return head, await asyncio.wait_for(reader.readexactly(length), 2)


# Header count


async def test_too_many_header_fields_get_431(backend: Backend) -> None:
    headers = [b"Host: a"] + [b"X-H%d: v" % i for i in range(MAX_HEADERS)]
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_with(headers), timeout=2)
    assert_problem(answer, 431, "headers-too-large")
    assert backend.seen == []


async def test_exactly_max_header_fields_pass(backend: Backend) -> None:
    headers = [b"Host: a", b"Connection: close"]
    headers += [b"X-H%d: v" % i for i in range(MAX_HEADERS - len(headers))]
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_with(headers), timeout=2)
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    [seen] = backend.seen
    assert seen.all("X-H0") == ["v"]
    assert len(seen.all(f"X-H{MAX_HEADERS - 3}")) == 1


# Head size


def big_head(size: int) -> bytes:
    """A request head of at least `size` bytes spread over the allowed header fields."""
    count = MAX_HEADERS - 2
    value = b"p" * (size // count + 1)
    filler = [b"X-Pad-%d: %s" % (i, value) for i in range(count)]
    return request_with([b"Host: a", b"Connection: close", *filler])


async def test_head_larger_than_the_limit_in_one_packet_gets_431(backend: Backend) -> None:
    request = request_with([b"Host: a", b"X-Big: " + b"b" * (MAX_HEADER_BYTES + 100)])
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert_problem(answer, 431, "headers-too-large")
    assert backend.seen == []


async def test_head_larger_than_the_limit_across_fields_gets_431(backend: Backend) -> None:
    request = big_head(MAX_HEADER_BYTES + 300)
    assert len(request) > MAX_HEADER_BYTES
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert_problem(answer, 431, "headers-too-large")
    assert backend.seen == []


@pytest.mark.parametrize("piece", [16, 100, 1000])
async def test_head_larger_than_the_limit_in_small_packets_gets_431(
    backend: Backend, piece: int
) -> None:
    # One endless header value: on_header never fires, only the bytes received can tell.
    request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Endless: " + b"e" * (MAX_HEADER_BYTES + 200)
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await send_in_pieces(proxy.port, request, piece)
    assert_problem(answer, 431, "headers-too-large")
    assert backend.seen == []


@pytest.mark.parametrize("piece", [16, 100, 4096])
async def test_head_just_under_the_limit_passes_however_it_is_split(
    backend: Backend, piece: int
) -> None:
    request = request_with(
        [b"Host: a", b"Connection: close", b"X-Big: " + b"b" * (MAX_HEADER_BYTES - 200)]
    )
    assert MAX_HEADER_BYTES - 200 < len(request) < MAX_HEADER_BYTES
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await send_in_pieces(proxy.port, request, piece)
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    [seen] = backend.seen
    assert seen.header("X-Big") == "b" * (MAX_HEADER_BYTES - 200)


async def test_request_target_longer_than_the_limit_gets_414(backend: Backend) -> None:
    request = request_with([b"Host: a"], target=b"/" + b"t" * (MAX_HEADER_BYTES + 10))
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert_problem(answer, 414, "uri-too-long")
    assert backend.seen == []


@pytest.mark.parametrize("piece", [16, 100, 1000])
async def test_request_target_longer_than_the_limit_in_small_packets_gets_414(
    backend: Backend, piece: int
) -> None:
    request = request_with([b"Host: a"], target=b"/" + b"t" * (MAX_HEADER_BYTES + 10))
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await send_in_pieces(proxy.port, request, piece)
    assert_problem(answer, 414, "uri-too-long")
    assert backend.seen == []


async def test_long_request_target_under_the_limit_passes(backend: Backend) -> None:
    target = b"/" + b"t" * (MAX_HEADER_BYTES // 2)
    request = request_with([b"Host: a", b"Connection: close"], target=target)
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][0] == 200
    assert [seen.path for seen in backend.seen] == [target.decode()]


# Time


async def test_slowloris_head_gets_408_after_the_header_timeout(backend: Backend) -> None:
    """The deadline runs from the head's first byte; trickling more bytes does not extend it."""
    async with running_proxy(route_to(backend.url)) as proxy:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)

        async def trickle() -> None:
            # One byte of a header value every 0.1 s for most of the timeout. The trickle stops
            # just before the deadline: the proxy closes without a lingering read, so a byte
            # crossing its close would turn the 408 into a reset (see RFC 9112 §9.6).
            with contextlib.suppress(ConnectionError):
                while loop.time() < started + HEADER_TIMEOUT - 0.1:
                    await asyncio.sleep(0.1)
                    writer.write(b"a")
                    await writer.drain()

        try:
            started = loop.time()
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            await writer.drain()
            trickler = asyncio.create_task(trickle())
            try:
                answer = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 1.0)
            finally:
                trickler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await trickler
            elapsed = loop.time() - started
        finally:
            writer.close()
    assert_problem(answer, 408, "request-timeout")
    # Had the trickle moved the deadline, the answer would come after about 0.9 s.
    assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + 0.35, elapsed
    assert backend.seen == []


async def test_slow_but_timely_head_is_served(backend: Backend) -> None:
    request = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nConnection: close\r\n\r\n"
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            for i in range(0, len(request), 16):
                writer.write(request[i : i + 16])
                await writer.drain()
                await asyncio.sleep(HEADER_TIMEOUT / 10)
            answer = await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    assert [seen.path for seen in backend.seen] == ["/slow"]


async def test_silent_client_is_closed_after_the_header_timeout(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            started = loop.time()
            answer = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 1.0)
            elapsed = loop.time() - started
        finally:
            writer.close()
    # Nothing was asked, so nothing is answered: the connection just ends.
    assert answer == b""
    assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + 0.5, elapsed
    assert backend.seen == []


async def test_idle_keep_alive_connection_is_closed_after_keepalive_timeout(
    backend: Backend,
) -> None:
    data = route_to(backend.url, header_timeout=5.0, keepalive_timeout=KEEPALIVE_TIMEOUT)
    async with running_proxy(data) as proxy:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in head.lower()
            assert body == b"app"
            idle_from = loop.time()
            rest = await asyncio.wait_for(reader.read(), KEEPALIVE_TIMEOUT + 1.0)
            elapsed = loop.time() - idle_from
        finally:
            writer.close()
    assert rest == b""
    assert KEEPALIVE_TIMEOUT - 0.05 <= elapsed <= KEEPALIVE_TIMEOUT + 0.5, elapsed
    assert [seen.path for seen in backend.seen] == ["/one"]


async def test_keep_alive_connection_in_use_stays_open(backend: Backend) -> None:
    """Requests within the keep-alive timeout of each other keep the connection open longer
    than the timeout in total."""
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            for i in range(4):
                writer.write(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
                await writer.drain()
                head, body = await read_response(reader)
                assert (head[:13], body) == (b"HTTP/1.1 200 ", b"app")
                await asyncio.sleep(KEEPALIVE_TIMEOUT / 2)
        finally:
            writer.close()
    assert [seen.path for seen in backend.seen] == ["/0", "/1", "/2", "/3"]


async def test_header_timeout_applies_to_the_next_request_on_a_kept_connection(
    backend: Backend,
) -> None:
    data = route_to(backend.url, keepalive_timeout=5.0)
    async with running_proxy(data) as proxy:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            assert (await read_response(reader))[1] == b"app"
            started = loop.time()
            writer.write(b"GET /two HTTP/1.1\r\nHost: a\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 1.0)
            elapsed = loop.time() - started
        finally:
            writer.close()
    assert_problem(answer, 408, "request-timeout")
    assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + 0.5, elapsed
    assert [seen.path for seen in backend.seen] == ["/one"]


async def test_a_stalled_body_gets_a_408_of_its_own(backend: Backend) -> None:
    """A body that stops arriving is not a slow head: the 408 says which it was."""
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 3.0)  # read_timeout is 1 s
        finally:
            writer.close()
    assert_problem(answer, 408, "request-body-timeout")
    problem = json.loads(parse_responses(answer)[0][2])
    assert problem["title"] == "Request body too slow"
    assert "body" in problem["detail"]
    assert "1 s" in problem["detail"]
