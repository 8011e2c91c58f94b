"""Request smuggling and desync: framing the proxy cannot be sure of never reaches a backend.

Every malformed request gets one 400 problem document, the connection is closed, and the backend
sees nothing at all (not a request, not even a connection). A valid request whose body looks like
another request is forwarded as exactly one request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from helpers import (
    Backend,
    RawBackend,
    config,
    exchange_raw,
    parse_responses,
    read_request_head,
    running_proxy,
    start_raw_backend,
)

FAST = {"header_timeout": 0.5, "keepalive_timeout": 1.0}


@pytest.fixture
async def raw_backend() -> AsyncIterator[RawBackend]:
    """A backend that answers anything with 200 "ok" (and counts the connections it gets)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    started = await start_raw_backend(answer)
    try:
        yield started
    finally:
        await started.stop()


def route_to(url: str) -> dict[str, object]:
    return config(
        {"app": [url]},
        {"all": {"weights": {"app": 1}}},
        downstream=FAST,
        upstream={"connect_timeout": 1.0, "read_timeout": 1.0},
    )


def assert_bad_request(answer: bytes) -> None:
    """Exactly one 400 problem document, announced as the last response on the connection."""
    responses = parse_responses(answer)
    assert len(responses) == 1, answer
    status, headers, body = responses[0]
    assert status == 400, answer
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 400
    assert problem["type"].endswith("bad-request")


MALFORMED = {
    "content-length then transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nhello"
    ),
    "transfer-encoding then content-length": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: 5\r\n\r\n0\r\n\r\nhello"
    ),
    "duplicate content-length, same value": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
    ),
    "duplicate content-length, different values": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
    ),
    "content-length list": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"),
    "negative content-length": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\nhello"),
    "invalid chunk size": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    ),
    "overflowing chunk size": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"
    ),
    "transfer-encoding gzip": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhello"
    ),
    "transfer-encoding gzip, chunked": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    ),
    "transfer-encoding chunked, gzip": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    ),
    "transfer-encoding xchunked": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "transfer-encoding chunked twice in one header": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    ),
    "transfer-encoding chunked in two headers": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n",
    "obs-fold with a tab": b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n\ttwo\r\n\r\n",
    "bare LF line endings": b"GET / HTTP/1.1\nHost: a\nX-A: 1\n\n",
    "bare LF after one header": b"GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n",
    "bare CR in a header value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\rtwo\r\n\r\n",
    "NUL in a header value": b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\x00two\r\n\r\n",
    "space before the colon": b"GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n",
    "space before the colon of transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\nhello"
    ),
    "space in the request target": b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (an HTTP/1.0
    # hop before us may have framed it differently), whatever else it says.
    "HTTP/1.0 with transfer-encoding chunked and keep-alive": (
        b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        b"GET /smuggled HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
    ),
    "HTTP/1.0 with transfer-encoding chunked": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_framing_is_rejected_before_any_backend_contact(
    request_bytes: bytes, backend: Backend
) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_bytes, timeout=2)
    assert_bad_request(answer)
    assert backend.seen == []


@pytest.mark.parametrize("request_bytes", list(MALFORMED.values()), ids=list(MALFORMED))
async def test_malformed_framing_opens_no_backend_connection(
    request_bytes: bytes, raw_backend: RawBackend
) -> None:
    async with running_proxy(route_to(raw_backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_bytes, timeout=2)
        # Give a stray connect (scheduled while parsing) the chance to happen before counting.
        await asyncio.sleep(0.05)
    assert_bad_request(answer)
    assert raw_backend.connections == 0


async def test_malformed_request_after_a_valid_one_ends_the_connection(
    backend: Backend,
) -> None:
    """The valid request is answered, then the malformed one behind it gets its 400 and the
    connection closes; neither it nor anything after it reaches the backend."""
    valid = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
    smuggle = (
        b"POST /second HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /third HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, valid + smuggle, timeout=2)
    responses = parse_responses(answer)
    assert responses[0][0] == 200
    assert responses[0][2] == b"app"
    # Still keep-alive: the client must go on reading to get the 400 that follows.
    assert "connection" not in responses[0][1]
    assert [status for status, _, _ in responses[1:]] == [400]
    assert responses[1][1]["connection"] == "close"
    assert responses[1][1]["content-type"] == "application/problem+json"
    assert [seen.path for seen in backend.seen] == ["/first"]


async def test_request_line_inside_a_content_length_body_stays_body(backend: Backend) -> None:
    inner = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
    body = b"0\r\n\r\n" + inner
    request = (
        b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % len(body)
    ) + body
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    responses = parse_responses(answer)
    assert [(status, payload) for status, _, payload in responses] == [(200, b"app")]
    assert len(backend.seen) == 1
    seen = backend.seen[0]
    assert (seen.method, seen.path, seen.body) == ("POST", "/upload", body)
    assert seen.all("Content-Length") == [str(len(body))]
    assert seen.header("Transfer-Encoding") is None


async def test_request_line_inside_a_chunk_stays_body(backend: Backend) -> None:
    inner = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
    request = (
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner)
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    responses = parse_responses(answer)
    assert [(status, payload) for status, _, payload in responses] == [(200, b"app")]
    assert [(seen.method, seen.path, seen.body) for seen in backend.seen] == [
        ("POST", "/upload", inner)
    ]


async def test_bad_chunk_after_valid_chunks_never_completes_a_request() -> None:
    """The head and first chunk may already be on their way; the backend must see the
    connection end without a complete request, and the client a 400 (or a closed connection)."""
    received = bytearray()
    backend_done = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                received.extend(chunk)
        finally:
            backend_done.set()

    raw = await start_raw_backend(swallow)
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(
                    b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n"
                )
                await writer.drain()
                # Let the proxy forward what it has, so the bad chunk arrives mid-stream.
                for _ in range(100):
                    if b"hello" in received:
                        break
                    await asyncio.sleep(0.01)
                writer.write(b"zz\r\nworld\r\n0\r\n\r\n")
                await writer.drain()
                answer = await asyncio.wait_for(reader.read(), 2)
            finally:
                writer.close()
            await asyncio.wait_for(backend_done.wait(), 2)
    finally:
        await raw.stop()
    if answer:
        assert_bad_request(answer)
    # The backend saw a head and "hello", then the connection ended: never the last chunk.
    assert received.startswith(b"POST /up HTTP/1.1\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in received
    assert b"hello" in received
    assert b"world" not in received
    assert not received.endswith(b"0\r\n\r\n")


async def test_bad_chunk_after_valid_chunks_reaches_no_aiohttp_handler(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(
                b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"5\r\nworld\r\nzz\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
        await asyncio.sleep(0.05)
    if answer:
        assert_bad_request(answer)
    assert backend.seen == []


async def test_pipelined_request_after_rejected_one_is_never_parsed(backend: Backend) -> None:
    """After a protocol error nothing more on the connection is trusted, however valid it
    looks (the bytes might be the body the two sides disagreed about)."""
    request = (
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\n"
        b"helloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert_bad_request(answer)
    assert backend.seen == []


WARM_CASES = [
    "transfer-encoding gzip",
    "transfer-encoding xchunked",
    "transfer-encoding gzip, chunked",
    "transfer-encoding chunked in two headers",
    "content-length then transfer-encoding",
    "duplicate content-length, same value",
    "obs-fold",
    "HTTP/1.0 with transfer-encoding chunked and keep-alive",
]


@pytest.mark.parametrize("request_bytes", [MALFORMED[name] for name in WARM_CASES], ids=WARM_CASES)
async def test_malformed_head_sends_nothing_on_a_warm_backend_connection(
    request_bytes: bytes,
) -> None:
    """With an idle keep-alive connection ready, a request is written to the backend as soon as
    its head is accepted: a head the proxy rejects must be rejected before that point."""
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
                proxy.port, b"GET /warm HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            )
            assert parse_responses(warm)[0][2] == b"ok"
            answer = await exchange_raw(proxy.port, request_bytes, timeout=2)
            await asyncio.sleep(0.05)
    finally:
        await raw.stop()
    assert_bad_request(answer)
    assert raw.connections == 1
    assert received.count(b"HTTP/1.1\r\n") == 1
    assert received.startswith(b"GET /warm HTTP/1.1\r\n")
