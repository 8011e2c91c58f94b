"""What crosses the proxy: hop-by-hop stripping both ways, X-Forwarded-*, X-Request-Id, Host."""

from __future__ import annotations

import asyncio
import re

import aiohttp
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
from proxy.headers import (
    COMMON_REQUEST_HEADERS,
    REQUEST_RULE,
    REQUEST_SPECIAL,
    request_header_actions,
    rule_values,
)

FAST = {"header_timeout": 0.5, "keepalive_timeout": 1.0}


def route_to(url: str, **sections: object) -> dict[str, object]:
    return config(
        {"app": [url]},
        {"all": {"weights": {"app": 1}}},
        downstream=FAST,
        upstream={"connect_timeout": 1.0, "read_timeout": 1.0},
        **sections,
    )


def names(headers: list[tuple[str, str]]) -> set[str]:
    return {name.lower() for name, _ in headers}


def head_names(answer: bytes) -> list[str]:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
    return [line.partition(":")[0].strip().lower() for line in head.split("\r\n")[1:]]


async def serve_raw(response: bytes) -> RawBackend:
    """A backend that answers every request on a connection with `response`."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request_head(reader)
            writer.write(response)
            await writer.drain()

    return await start_raw_backend(answer)


# A. Hop-by-hop fields, request direction


async def test_hop_by_hop_request_headers_never_reach_the_backend(backend: Backend) -> None:
    request = (
        b"GET /hop HTTP/1.1\r\nHost: a.example\r\n"
        b"Connection: close, X-Secret\r\n"
        b"X-Secret: s3cret\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"TE: trailers\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Upgrade: websocket\r\n"
        b"X-Kept: yes\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert [(status, body) for status, _, body in parse_responses(answer)] == [(200, b"app")]
    [seen] = backend.seen
    received = names(seen.headers)
    for hop in ("x-secret", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        assert hop not in received, hop
    # The proxy speaks keep-alive to its backend whatever the client asked for: no Connection.
    assert seen.header("Connection") is None
    assert seen.all("X-Kept") == ["yes"]


async def test_every_header_named_by_connection_is_stripped(backend: Backend) -> None:
    """Several Connection headers and lists: each named field goes, whatever its case."""
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\n"
        b"Connection: X-One,  x-two\r\n"
        b"Connection: keep-alive, X-THREE\r\n"
        b"X-One: 1\r\nX-Two: 2\r\nx-three: 3\r\nX-Four: 4\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.readuntil(b"app"), 2)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")
    [seen] = backend.seen
    assert not {"x-one", "x-two", "x-three"} & names(seen.headers)
    assert seen.all("X-Four") == ["4"]


async def test_connection_cannot_strip_protected_request_headers(backend: Backend) -> None:
    request = (
        b"POST /p HTTP/1.1\r\nHost: shop.example\r\n"
        b"Connection: Host, Content-Length, X-Forwarded-For, Cookie, X-Request-Id, close\r\n"
        b"Cookie: session=abc\r\n"
        b"X-Forwarded-For: 203.0.113.7\r\n"
        b"X-Request-Id: req-1\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][:1] == (200,)
    [seen] = backend.seen
    assert seen.all("Host") == ["shop.example"]
    assert seen.all("Content-Length") == ["5"]
    assert seen.body == b"hello"
    assert seen.all("Cookie") == ["session=abc"]
    assert seen.all("X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]
    assert seen.all("X-Request-Id") == ["req-1"]


async def test_client_chunked_request_is_rechunked_not_copied(backend: Backend) -> None:
    """Transfer-Encoding is hop-by-hop too: the backend gets the proxy's own framing."""
    request = (
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][0] == 200
    [seen] = backend.seen
    assert seen.body == b"abcdefg"
    assert seen.all("Transfer-Encoding") == ["chunked"]
    assert seen.header("Content-Length") is None


# A. Hop-by-hop fields, response direction


async def test_hop_by_hop_response_headers_never_reach_the_client() -> None:
    raw = await serve_raw(
        b"HTTP/1.1 200 OK\r\n"
        b"Connection: X-Internal, keep-alive\r\n"
        b"X-Internal: 1\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Upgrade: h2c\r\n"
        b"X-Public: yes\r\n"
        b"Content-Length: 4\r\n\r\nbody"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer = await exchange_raw(
                proxy.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=2
            )
    finally:
        await raw.stop()
    [(status, headers, body)] = parse_responses(answer)
    assert (status, body) == (200, b"body")
    received = head_names(answer)
    for hop in ("x-internal", "keep-alive", "proxy-connection", "trailer", "upgrade"):
        assert hop not in received, hop
    assert headers["x-public"] == "yes"
    # The only Connection header is the proxy's own, answering the client's close.
    assert received.count("connection") == 1
    assert headers["connection"] == "close"


async def test_connection_cannot_strip_protected_response_headers() -> None:
    raw = await serve_raw(
        b"HTTP/1.1 200 OK\r\n"
        b"Connection: Set-Cookie, Content-Length, X-Drop\r\n"
        b"Set-Cookie: a=1\r\nX-Drop: 1\r\n"
        b"Content-Length: 4\r\n\r\nbody"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer = await exchange_raw(
                proxy.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=2
            )
    finally:
        await raw.stop()
    [(status, headers, body)] = parse_responses(answer)
    assert (status, body) == (200, b"body")
    assert headers["set-cookie"] == "a=1"
    assert headers["content-length"] == "4"
    assert "x-drop" not in headers


async def test_chunked_upstream_response_is_reframed_by_the_proxy() -> None:
    """Chunk extensions and trailers are the backend's framing, not content: the client gets a
    fresh chunked body with the same bytes."""
    raw = await serve_raw(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    try:
        async with running_proxy(route_to(raw.url)) as proxy:
            answer = await exchange_raw(
                proxy.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=2
            )
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{proxy.port}/") as response,
            ):
                assert await response.read() == b"hello world"
                assert response.headers.getall("Transfer-Encoding") == ["chunked"]
    finally:
        await raw.stop()
    [(status, headers, body)] = parse_responses(answer)
    assert (status, body) == (200, b"hello world")
    assert headers["transfer-encoding"] == "chunked"
    assert head_names(answer).count("transfer-encoding") == 1
    assert b"name=value" not in answer
    assert b"X-Sum" not in answer
    assert answer.endswith(b"0\r\n\r\n")


# B. X-Forwarded-*, X-Request-Id, Host


async def test_forwarded_for_is_appended_for_a_trusted_peer(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{proxy.port}/"
        async with session.get(url, headers={"X-Forwarded-For": "203.0.113.7"}) as response:
            assert await response.text() == "app"
    [seen] = backend.seen
    assert seen.all("X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]


async def test_two_forwarded_for_headers_are_combined_in_order(backend: Backend) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\n"
        b"X-Forwarded-For: 198.51.100.2, 192.0.2.9\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][0] == 200
    [seen] = backend.seen
    assert seen.all("X-Forwarded-For") == ["203.0.113.7, 198.51.100.2, 192.0.2.9, 127.0.0.1"]


async def test_trusted_peer_keeps_its_forwarded_proto_and_host(backend: Backend) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: internal:8080\r\nX-Forwarded-Proto: https\r\n"
        b"X-Forwarded-Host: www.example.com\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        await exchange_raw(proxy.port, request, timeout=2)
    [seen] = backend.seen
    assert seen.all("X-Forwarded-Proto") == ["https"]
    assert seen.all("X-Forwarded-Host") == ["www.example.com"]
    assert seen.all("Host") == ["internal:8080"]


async def test_untrusted_peer_cannot_forge_forwarded_headers(backend: Backend) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: shop.example\r\n"
        b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.0.0.1\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
        b"Connection: close\r\n\r\n"
    )
    data = route_to(backend.url, forwarded={"trusted_proxies": []})
    async with running_proxy(data) as proxy:
        answer = await exchange_raw(proxy.port, request, timeout=2)
    assert parse_responses(answer)[0][0] == 200
    [seen] = backend.seen
    assert seen.all("X-Forwarded-For") == ["127.0.0.1"]
    assert seen.all("X-Forwarded-Proto") == ["http"]
    assert seen.all("X-Forwarded-Host") == ["shop.example"]


async def test_forwarded_headers_are_set_when_absent(backend: Backend) -> None:
    request = b"GET / HTTP/1.1\r\nHost: Shop.Example:8443\r\nConnection: close\r\n\r\n"
    async with running_proxy(route_to(backend.url)) as proxy:
        await exchange_raw(proxy.port, request, timeout=2)
    [seen] = backend.seen
    assert seen.all("X-Forwarded-For") == ["127.0.0.1"]
    assert seen.all("X-Forwarded-Proto") == ["http"]
    assert seen.all("X-Forwarded-Host") == ["Shop.Example:8443"]
    # The Host header reaches the backend exactly as the client sent it.
    assert seen.all("Host") == ["Shop.Example:8443"]


async def test_request_id_is_generated_unique_and_well_formed(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy, aiohttp.ClientSession() as session:
        for i in range(100):
            async with session.get(f"http://127.0.0.1:{proxy.port}/{i}") as response:
                assert await response.text() == "app"
    ids = [seen.all("X-Request-Id") for seen in backend.seen]
    assert len(ids) == 100
    assert all(len(values) == 1 for values in ids)
    flat = [values[0] for values in ids]
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in flat), flat[:3]
    assert len(set(flat)) == 100


async def test_client_request_id_is_preserved(backend: Backend) -> None:
    async with running_proxy(route_to(backend.url)) as proxy, aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{proxy.port}/"
        async with session.get(url, headers={"X-Request-Id": "trace-7f3a"}) as response:
            assert response.status == 200
    [seen] = backend.seen
    assert seen.all("X-Request-Id") == ["trace-7f3a"]


async def test_request_id_appears_in_the_proxys_own_problem_documents() -> None:
    """A client's request id is echoed in a problem answer, so both sides can be correlated."""
    data = config(
        {"app": ["http://127.0.0.1:9"]},
        {"only": {"hosts": ["only.example"], "weights": {"app": 1}}},
        downstream=FAST,
    )
    async with running_proxy(data) as proxy:
        answer = await exchange_raw(
            proxy.port,
            b"GET / HTTP/1.1\r\nHost: other.example\r\nX-Request-Id: abc-123\r\n"
            b"Connection: close\r\n\r\n",
            timeout=2,
        )
    [(status, headers, body)] = parse_responses(answer)
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert b'"requestId":"abc-123"' in body


async def test_end_to_end_headers_keep_order_case_and_repeats(backend: Backend) -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Multi: one\r\nAccept: text/plain\r\n"
        b"X-Multi: two\r\nx-MiXeD-cAsE: v\r\nConnection: close\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        await exchange_raw(proxy.port, request, timeout=2)
    [seen] = backend.seen
    assert seen.all("X-Multi") == ["one", "two"]
    assert ("x-MiXeD-cAsE", "v") in seen.headers
    assert seen.all("Accept") == ["text/plain"]


async def test_special_headers_in_unusual_spellings_are_still_special(backend: Backend) -> None:
    request = (
        b"GET / HTTP/1.1\r\nhOsT: a.example\r\nCOOKIE: c=1\r\nkeep-ALIVE: 5\r\nTe: trailers\r\n"
        b"x-request-ID: rid-1\r\nUSER-AGENT: ua\r\nACCEPT: a\r\nCONNECTION: close\r\n\r\n"
    )
    async with running_proxy(route_to(backend.url)) as proxy:
        await exchange_raw(proxy.port, request, timeout=2)
    [seen] = backend.seen
    assert seen.all("Host") == ["a.example"]
    assert seen.all("Cookie") == ["c=1"]
    assert seen.all("X-Request-Id") == ["rid-1"]
    assert ("USER-AGENT", "ua") in seen.headers
    assert ("ACCEPT", "a") in seen.headers
    for hop in ("keep-alive", "te", "connection"):
        assert hop not in names(seen.headers), hop


def test_header_actions_agree_with_the_lower_case_name() -> None:
    """Every spelling in the table gets what its lower-cased name would: the special kind (or
    0), plus REQUEST_RULE for a header a rule reads."""
    rules = frozenset({b"x-canary", b"user-agent", b"cookie"})
    actions = request_header_actions(rules)
    for lname in (*REQUEST_SPECIAL, *COMMON_REQUEST_HEADERS, *rules):
        assert lname in actions, lname
    for name, action in actions.items():
        lname = name.lower()
        expected = REQUEST_SPECIAL.get(lname, 0) + (REQUEST_RULE if lname in rules else 0)
        assert action == expected, name
    assert actions[b"X-Forwarded-For"] == REQUEST_SPECIAL[b"x-forwarded-for"]
    assert actions[b"USER-AGENT"] == REQUEST_RULE
    assert actions[b"Accept"] == 0


# Values routing rules read (re-read when the snapshot changed between parsing and routing)

RULE_VALUES = [
    ([(b"X-Canary", b"always")], {"x-canary": "always"}),
    ([(b"X-Canary", b"always \t ")], {"x-canary": "always"}),
    ([(b"x-canary", b"\talways")], {"x-canary": "always"}),
    ([(b"X-Debug", b" ")], {"x-debug": ""}),
    ([(b"x-canary", b"a "), (b"X-Canary", b"b\t")], {"x-canary": "a, b"}),
    ([(b"x-other", b"always ")], {}),
]


@pytest.mark.parametrize(("headers", "expected"), RULE_VALUES)
def test_rule_values_exclude_surrounding_whitespace(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str]
) -> None:
    assert rule_values(headers, frozenset({b"x-canary", b"x-debug"})) == expected
