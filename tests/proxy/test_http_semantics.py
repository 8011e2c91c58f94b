"""HTTP/1.x semantics end to end: HEAD, HTTP/1.0, close-delimited bodies, pipelining, Expect,
versions and methods the proxy refuses, absolute-form targets, bodiless statuses, interim
responses, trailers and large uploads."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from helpers import (
    Backend,
    RawBackend,
    config,
    exchange_raw,
    parse_responses,
    read_request_head,
    running_proxy,
    start_backend,
    start_raw_backend,
)

FAST = {"header_timeout": 0.5, "keepalive_timeout": 1.0}
PAGE = b"0123456789" * 100


def route_to(url: str, **sections: object) -> dict[str, object]:
    return config(
        {"app": [url]},
        {"all": {"weights": {"app": 1}}},
        downstream=FAST,
        upstream={"connect_timeout": 1.0, "read_timeout": 1.0},
        **sections,
    )


async def site(request: web.Request) -> web.StreamResponse:
    """Paths choose the answer: /204, /304, /slow, /echo (the path), else PAGE."""
    if request.path == "/204":
        return web.Response(status=204)
    if request.path == "/304":
        return web.Response(status=304, headers={"ETag": '"v1"'})
    if request.path.startswith("/slow"):
        await asyncio.sleep(0.2)
    if request.path.startswith(("/slow", "/echo")):
        return web.Response(text=request.path_qs)
    return web.Response(body=PAGE)


@pytest.fixture
async def site_backend() -> AsyncIterator[Backend]:
    started = await start_backend("site", site)
    try:
        yield started
    finally:
        await started.stop()


async def serve_raw(*responses: bytes) -> RawBackend:
    """A backend that reads one request head per connection, writes `responses`, and closes."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        for response in responses:
            writer.write(response)
            await writer.drain()

    return await start_raw_backend(answer)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    lines = raw.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, raw


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length (or none at all, for bodiless ones)."""
    status, headers, _ = await read_head(reader)
    length = int(headers.get("content-length", "0"))
    assert "transfer-encoding" not in headers
    return status, headers, await asyncio.wait_for(reader.readexactly(length), 2)


def assert_problem(answer: bytes, status: int, slug: str) -> None:
    [(got, headers, body)] = parse_responses(answer)
    assert got == status, answer
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["type"].endswith(slug)


# HEAD


async def test_head_gets_the_get_length_no_body_and_keeps_the_connection(
    site_backend: Backend,
) -> None:
    async with running_proxy(route_to(site_backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"HEAD /page HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            status, headers, _ = await read_head(reader)
            assert status == 200
            assert headers["content-length"] == str(len(PAGE))
            assert "connection" not in headers
            # No body bytes: the very next bytes are the next response's status line.
            writer.write(b"GET /page HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            status, headers, body = await read_response(reader)
            assert (status, body) == (200, PAGE)
        finally:
            writer.close()
    assert [(seen.method, seen.path) for seen in site_backend.seen] == [
        ("HEAD", "/page"),
        ("GET", "/page"),
    ]


async def test_head_with_a_backend_that_wrongly_sends_a_body() -> None:
    """Bytes a backend sends after a HEAD response's head are not a body: the client never
    sees them, and the connection to the client stays in sync."""
    raw = await serve_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
                await writer.drain()
                status, headers, _ = await read_head(reader)
                assert (status, headers["content-length"]) == (200, "5")
                status, headers, body = await read_response(reader)
                assert (status, body) == (200, b"hello")
            finally:
                writer.close()
    finally:
        await raw.stop()


# HTTP/1.0


async def test_http10_without_host_is_served_and_closed(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, b"GET /old HTTP/1.0\r\n\r\n", timeout=2)
    [(status, headers, body)] = parse_responses(answer)
    assert (status, body) == (200, b"app")
    assert headers["connection"] == "close"
    [seen] = backend.seen
    assert seen.path == "/old"
    # The backend is told a Host: its own address, as a client talking to it would send.
    assert seen.all("Host") == [f"127.0.0.1:{backend.port}"]


async def test_http10_keep_alive_keeps_the_connection(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            for path in (b"/one", b"/two"):
                writer.write(b"GET %s HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n" % path)
                await writer.drain()
                status, headers, body = await read_response(reader)
                assert (status, body) == (200, b"app")
                assert headers["connection"].lower() == "keep-alive"
        finally:
            writer.close()
    assert [seen.path for seen in backend.seen] == ["/one", "/two"]


async def test_http10_client_gets_a_chunked_upstream_body_delimited_by_close() -> None:
    raw = await serve_raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer = await exchange_raw(
                proxy.port, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", timeout=2
            )
    finally:
        await raw.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 200 ")
    assert b"connection: close" in lines
    assert not any(line.startswith((b"transfer-encoding", b"content-length")) for line in lines)
    assert body == b"hello world"


async def test_http10_post_with_content_length(backend: Backend) -> None:
    request = b"POST /form HTTP/1.0\r\nHost: a\r\nContent-Length: 7\r\n\r\npayload"
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][2] == b"app"
    [seen] = backend.seen
    assert (seen.method, seen.body, seen.all("Content-Length")) == ("POST", b"payload", ["7"])


# Which version a head has: the proxy reads "1.1" off the request line that starts a read
# (Downstream.data_received) and asks the parser otherwise; the two must always agree. A
# keep-alive HTTP/1.0 client is told "Connection: keep-alive", an HTTP/1.1 client is not.

V10 = b"GET /%d HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"
V11 = b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n"
LAST = b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def connection_headers(answer: bytes) -> list[str | None]:
    return [headers.get("connection") for _, headers, _ in parse_responses(answer)]


async def send_in_reads(port: int, pieces: list[bytes]) -> bytes:
    """Each piece in its own write, with a pause between, so the proxy reads them apart."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        return await asyncio.wait_for(reader.read(), 2)
    finally:
        writer.close()


async def test_pipelined_http10_and_http11_heads_keep_their_versions(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        mixed = await exchange_raw(proxy.port, V11 % 1 + V10 % 2 + V11 % 3 + V10 % 4 + LAST)
        first10 = await exchange_raw(proxy.port, V10 % 1 + V11 % 2 + V10 % 3 + LAST)
    ka = "keep-alive"
    assert connection_headers(mixed) == [None, ka, None, ka, "close"]
    assert connection_headers(first10) == [ka, None, ka, "close"]


async def test_heads_split_over_reads_keep_their_versions(backend: Backend) -> None:
    pieces = [
        b"GET /1 HTTP/1.1\r\n",  # a whole 1.1 request line, its head completes next read
        b"Host: a\r\n\r\n" + V10 % 2 + b"GET /3 HTT",  # a 1.0 head after a completed one
        b"P/1.1\r\nHost: a\r\n\r\n",
        b"GET /4 HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n",
        b"\r\n" + V11 % 5,
        b"GET /6 HTTP/1.2\r\nHost: a\r\n\r\n" + V10 % 7,  # served as 1.1, then 1.0
        b"GET /8 HTTP/1.0\r",  # the line's end split between reads
        b"\nHost: a\r\nConnection: keep-alive\r\n\r\n",
        LAST,
    ]
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await send_in_reads(proxy.port, pieces)
    ka = "keep-alive"
    assert connection_headers(answer) == [None, ka, None, ka, None, None, ka, ka, "close"]
    assert [seen.path for seen in backend.seen] == [
        *(f"/{n}" for n in range(1, 9)),
        "/last",
    ]


# Close-delimited upstream bodies


async def test_close_delimited_upstream_body_reaches_http11_client_chunked() -> None:
    raw = await serve_raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ", b"second part"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
                await writer.drain()
                status, headers, _ = await read_head(reader)
                assert (status, headers["transfer-encoding"]) == (200, "chunked")
                assert "content-length" not in headers
                assert "connection" not in headers
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
                    data = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += data[:-2]
                assert body == b"first part, second part"
                # The client connection outlives the backend's: a second request works.
                writer.write(b"GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                await writer.drain()
                rest = await asyncio.wait_for(reader.read(), 2)
            finally:
                writer.close()
    finally:
        await raw.stop()
    [(status, _, body)] = parse_responses(rest)
    assert (status, body) == (200, b"first part, second part")
    assert raw.connections == 2


# Pipelining


async def test_pipelined_requests_are_answered_in_order(site_backend: Backend) -> None:
    request = (
        b"GET /echo/1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /echo/2?x=y HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /echo/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(route_to(site_backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    responses = parse_responses(answer)
    assert [(status, body) for status, _, body in responses] == [
        (200, b"/echo/1"),
        (200, b"/echo/2?x=y"),
        (200, b"/echo/3"),
    ]
    assert [seen.path for seen in site_backend.seen] == ["/echo/1", "/echo/2?x=y", "/echo/3"]


async def test_pipelined_responses_keep_order_when_the_first_is_slowest(
    site_backend: Backend,
) -> None:
    request = (
        b"GET /slow/1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /echo/2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /echo/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(route_to(site_backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert [body for _, _, body in parse_responses(answer)] == [b"/slow/1", b"/echo/2", b"/echo/3"]


# Expect


async def test_expect_100_continue(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(
                b"PUT /file HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            assert backend.seen == []
            writer.write(b"hello world")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    [seen] = backend.seen
    assert (seen.method, seen.body) == ("PUT", b"hello world")
    assert seen.header("Expect") is None


async def test_expect_100_continue_without_a_body_gets_no_interim(backend: Backend) -> None:
    request = b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert parse_responses(answer)[0][2] == b"app"
    assert backend.seen[0].header("Expect") is None


async def test_unknown_expectation_gets_417(backend: Backend) -> None:
    request = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\nhi"
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert_problem(answer, 417, "expectation-failed")
    assert backend.seen == []


# What the proxy refuses


@pytest.mark.parametrize(
    ("request_bytes", "status", "slug"),
    [
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "version-not-supported"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "bad-request"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad-request"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "bad-request"),
        (b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501, "not-implemented"),
        (b"GET http://user@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "bad-request"),
    ],
    ids=["http/2.0", "no host", "two hosts", "two equal hosts", "connect", "userinfo"],
)
async def test_refused_requests(
    backend: Backend, request_bytes: bytes, status: int, slug: str
) -> None:
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request_bytes, timeout=2)
    assert_problem(answer, status, slug)
    assert backend.seen == []


async def test_absolute_form_target_becomes_origin_form(backend: Backend) -> None:
    request = (
        b"GET http://example.com/path?q HTTP/1.1\r\nHost: ignored.example\r\n"
        b"Connection: close\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][:1] == (200,)
    [seen] = backend.seen
    assert seen.path == "/path?q"
    assert seen.all("Host") == ["example.com"]
    assert seen.all("X-Forwarded-Host") == ["example.com"]


async def test_absolute_form_target_routes_by_its_authority(backend: Backend) -> None:
    data = config(
        {"app": [backend.url]},
        {"only": {"hosts": ["example.com"], "weights": {"app": 1}}},
        downstream=FAST,
    )
    request = (
        b"GET http://example.com?x=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(data) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    assert [seen.path for seen in backend.seen] == ["/?x=1"]


async def test_no_matching_route_gets_404_and_the_connection_stays_usable(
    backend: Backend,
) -> None:
    data = config(
        {"app": [backend.url]},
        {"only": {"hosts": ["only.example"], "weights": {"app": 1}}},
        downstream=FAST,
    )
    async with running_proxy(data) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"GET /x HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n")
            await writer.drain()
            status, headers, body = await read_response(reader)
            assert status == 404
            assert headers["content-type"] == "application/problem+json"
            problem = json.loads(body)
            assert problem["type"].endswith("no-route")
            assert problem["status"] == 404
            assert "connection" not in headers  # a complete request: the connection goes on
            writer.write(b"GET /y HTTP/1.1\r\nHost: only.example\r\n\r\n")
            await writer.drain()
            status, _, body = await read_response(reader)
            assert (status, body) == (200, b"app")
        finally:
            writer.close()
    assert [seen.path for seen in backend.seen] == ["/y"]


# Bodiless statuses and interim responses


async def test_204_and_304_pass_without_a_body(site_backend: Backend) -> None:
    async with running_proxy(route_to(site_backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n")
            await writer.drain()
            status, headers, _ = await read_head(reader)
            assert status == 204
            assert "content-length" not in headers
            assert "transfer-encoding" not in headers
            writer.write(b'GET /304 HTTP/1.1\r\nHost: a\r\nIf-None-Match: "v1"\r\n\r\n')
            await writer.drain()
            status, headers, _ = await read_head(reader)
            assert (status, headers["etag"]) == (304, '"v1"')
            assert "transfer-encoding" not in headers
            writer.write(b"GET /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 2)
        finally:
            writer.close()
    # Nothing stray between the bodiless responses and the next one.
    [(status, _, body)] = parse_responses(rest)
    assert (status, body) == (200, PAGE)


async def test_304_with_a_content_length_has_no_body() -> None:
    """A 304's Content-Length describes the representation, not a body (RFC 9110 §8.6)."""
    raw = await serve_raw(b'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: "v"\r\n\r\n')
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                await writer.drain()
                status, headers, _ = await read_head(reader)
                assert (status, headers["content-length"]) == (304, "10")
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                await writer.drain()
                rest = await asyncio.wait_for(reader.read(), 2)
            finally:
                writer.close()
    finally:
        await raw.stop()
    assert rest.startswith(b"HTTP/1.1 304 ")


async def test_103_early_hints_reach_the_client_before_the_final_response() -> None:
    hints_read = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request_head(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.wait_for(hints_read.wait(), 2)  # the final response waits for the client
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfull")
        await writer.drain()

    raw = await start_raw_backend(answer)
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                await writer.drain()
                status, headers, raw_head = await read_head(reader)
                assert (status, headers["link"]) == (103, "</style.css>; rel=preload")
                assert "content-length" not in headers
                hints_read.set()
                status, _, body = await read_response(reader)
                assert (status, body) == (200, b"full")
            finally:
                writer.close()
    finally:
        await raw.stop()
    assert raw_head.startswith(b"HTTP/1.1 103 ")


async def test_http10_client_gets_no_interim_response() -> None:
    raw = await serve_raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfull",
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer = await exchange_raw(proxy.port, b"GET / HTTP/1.0\r\n\r\n", timeout=2)
    finally:
        await raw.stop()
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"103" not in answer
    assert parse_responses(answer)[0][2] == b"full"


# Request bodies


async def test_request_trailers_are_dropped_and_the_body_arrives_intact() -> None:
    received: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_request_head(reader)
        body = await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), 2)
        received.extend((head, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    raw = await start_raw_backend(answer)
    request = (
        b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"
        b"Connection: close\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\nX-Other: 1\r\n\r\n"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer_bytes = await exchange_raw(proxy.port, request, timeout=2)
    finally:
        await raw.stop()
    assert parse_responses(answer_bytes)[0][2] == b"ok"
    head, body = received
    assert b"Transfer-Encoding: chunked\r\n" in head
    assert b"X-Sum" not in head + body
    assert b"X-Other" not in head + body
    assert b"trailer" not in head.lower()
    assert dechunk(body) == b"hello world"
    assert body.endswith(b"\r\n0\r\n\r\n")


def dechunk(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            assert data == b"\r\n"
            return body
        body += data[:size]
        assert data[size : size + 2] == b"\r\n"
        data = data[size + 2 :]


async def test_large_chunked_upload_arrives_intact(backend: Backend) -> None:
    payload = os.urandom(1 << 20)
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(
                b"POST /big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n"
            )
            step = 65536 + 17  # chunks that do not line up with any buffer size
            for i in range(0, len(payload), step):
                piece = payload[i : i + step]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    assert parse_responses(answer)[0][2] == b"app"
    [seen] = backend.seen
    assert len(seen.body) == len(payload)
    assert seen.body == payload
    assert seen.all("Transfer-Encoding") == ["chunked"]


async def test_large_content_length_upload_arrives_intact(backend: Backend) -> None:
    payload = os.urandom(1 << 20)
    head = b"PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, head % len(payload) + payload, timeout=5)
    assert parse_responses(answer)[0][2] == b"app"
    [seen] = backend.seen
    assert seen.body == payload
    assert seen.all("Content-Length") == [str(len(payload))]
