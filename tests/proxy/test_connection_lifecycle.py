"""How client connections end, and which HTTP versions are served."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from helpers import (
    Backend,
    config,
    exchange_raw,
    parse_responses,
    read_request_head,
    running_proxy,
    start_raw_backend,
)


def route_to(url: str, **downstream: float) -> dict[str, object]:
    return config(
        {"app": [url]},
        {"all": {"weights": {"app": 1}}},
        downstream={"header_timeout": 1.0, **downstream},
    )


async def test_error_reaches_a_client_that_is_still_sending(backend: Backend) -> None:
    """RFC 9112 §9.6: close the write side, then read and discard, so the kernel does not
    reset the connection (and destroy the 431) while the client's bytes are unread."""
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        head = b"POST / HTTP/1.1\r\nHost: a\r\n" + b"X-Filler: f\r\n" * 150 + b"\r\n"
        writer.write(head)

        async def keep_sending() -> None:
            with contextlib.suppress(ConnectionError):
                for _ in range(200):
                    writer.write(b"x" * 8192)
                    await writer.drain()

        sender = asyncio.create_task(keep_sending())
        answer = await asyncio.wait_for(reader.read(), 5)  # to EOF
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    [(status, headers, body)] = parse_responses(answer)
    assert status == 431
    assert headers["connection"] == "close"
    assert b"headers-too-large" in body
    assert backend.seen == []


async def _until_no_connections(proxy: object) -> bool:
    """Whether the proxy stops holding any client connection within a second."""
    for _ in range(100):
        if not proxy.dataplane.connections:  # type: ignore[attr-defined]
            return True
        await asyncio.sleep(0.01)
    return False


async def test_a_lingering_connection_is_closed_when_the_client_stops(backend: Backend) -> None:
    """After a protocol error the proxy lingers (the client may still be sending) until the
    client closes its side."""
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 2)  # to EOF: the proxy shut its side
        assert parse_responses(answer)[0][0] == 400
        assert proxy.dataplane.connections  # type: ignore[union-attr]  # lingering
        writer.close()
        assert await _until_no_connections(proxy)


async def test_a_client_that_asked_to_close_is_not_lingered_on(backend: Backend) -> None:
    """A whole, well-formed request with Connection: close and nothing after it: nothing more
    can come from the client, so the proxy closes at once (as nginx does) instead of holding
    the connection until the client closes too."""
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 2)
        assert parse_responses(answer)[0][0] == 200
        # The client has not closed its side, and the proxy holds nothing for it already.
        assert await _until_no_connections(proxy)
        writer.close()


@pytest.mark.parametrize(("version", "served_as"), [(b"1.1", b"1.1"), (b"1.2", b"1.1")])
async def test_http_1_minor_versions_are_served(
    backend: Backend, version: bytes, served_as: bytes
) -> None:
    """RFC 9112 §2.3: a server accepts a higher minor version and answers as 1.1."""
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(
            proxy.port, b"GET /v HTTP/" + version + b"\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
    assert answer.startswith(b"HTTP/" + served_as + b" 200 ")
    assert [seen.path for seen in backend.seen] == ["/v"]


@pytest.mark.parametrize("version", [b"2.0", b"3.0", b"0.9", b"9.9"])
async def test_other_versions_get_505(backend: Backend, version: bytes) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, b"GET / HTTP/" + version + b"\r\nHost: a\r\n\r\n")
    [(status, headers, _)] = parse_responses(answer)
    assert status == 505
    assert headers["content-type"] == "application/problem+json"
    assert backend.seen == []


async def test_http_1_0_without_host_names_the_backend_and_no_forwarded_host(
    backend: Backend,
) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, b"GET /old HTTP/1.0\r\n\r\n")
    assert parse_responses(answer)[0][0] == 200
    [seen] = backend.seen
    assert seen.all("Host") == [f"127.0.0.1:{backend.port}"]
    assert seen.all("X-Forwarded-Host") == []


async def test_a_bad_chunk_in_the_first_read_sends_nothing_on_a_warm_connection() -> None:
    """The request starts only after the whole read has been parsed: a warm pooled connection
    would otherwise get the head before llhttp reached the bad chunk."""
    received = bytearray()

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            received.extend(await read_request_head(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    raw = await start_raw_backend(keep_alive)
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            warm = await exchange_raw(
                proxy.port, b"GET /warm HTTP/1.1\r\nHost: a\r\n\r\n", until_close=False
            )
            assert warm.endswith(b"ok")
            bad = (
                b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\nzz\r\n"
            )
            answer = await exchange_raw(proxy.port, bad, timeout=3)
            await asyncio.sleep(0.05)
    finally:
        await raw.stop()
    assert parse_responses(answer)[0][0] == 400
    assert raw.connections == 1
    assert bytes(received).count(b" HTTP/1.1\r\n") == 1  # only /warm


async def test_a_small_post_goes_out_in_one_write() -> None:
    """Head and body of a small request leave in a single write: the backend reads them
    together, in its first read."""
    first_reads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first_reads.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()

    raw = await start_raw_backend(answer)
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            request = b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
            answer_bytes = await exchange_raw(proxy.port, request, until_close=False)
    finally:
        await raw.stop()
    assert answer_bytes.endswith(b"ok")
    assert first_reads[0].endswith(b"\r\n\r\nhello world")
