"""Path normalisation end to end: the route turnout picks and the path the backend receives agree.

Two routes go to two different apps: `/admin` (first) and everything else. The backends are raw
servers that record the request line byte for byte, so nothing on the test side normalises.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers import RawBackend, config, exchange_raw, parse_responses, running_proxy
from helpers import start_raw_backend as start_raw


@dataclass
class App:
    name: str
    lines: list[bytes] = field(default_factory=list)
    """The request line of every request received."""
    server: RawBackend | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


async def start_app(name: str) -> App:
    app = App(name)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            app.lines.append(head.split(b"\r\n", 1)[0])
            body = name.encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()

    app.server = await start_raw(serve)
    return app


@pytest.fixture
async def apps() -> AsyncIterator[dict[str, App]]:
    started = {name: await start_app(name) for name in ("admin", "public")}
    yield started
    for app in started.values():
        assert app.server is not None
        await app.server.stop()


def two_routes(apps: dict[str, App], **downstream: Any) -> dict[str, Any]:
    return config(
        {name: [app.url] for name, app in apps.items()},
        {
            "admin": {"path_prefix": "/admin", "weights": {"admin": 1}},
            "public": {"weights": {"public": 1}},
        },
        downstream=downstream,
    )


async def get(port: int, target: bytes) -> tuple[int, bytes]:
    answer = await exchange_raw(
        port, b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )
    status, _, body = parse_responses(answer)[0]
    return status, body


@pytest.mark.parametrize(
    ("target", "app", "forwarded"),
    [
        (b"/public/../admin/users", "admin", b"/admin/users"),
        (b"/public/%2e%2E/admin", "admin", b"/admin"),
        (b"/%61dmin/users", "admin", b"/admin/users"),
        (b"/./admin", "admin", b"/admin"),
        (b"/admin/../public", "public", b"/public"),  # out of a prefix, too
        (b"/admin%2F..%2Fpublic", "public", b"/admin%2F..%2Fpublic"),  # not a segment: no match
        (b"/public/a?next=/../admin", "public", b"/public/a?next=/../admin"),  # query untouched
        (b"/public//admin", "public", b"/public//admin"),
        (b"/admin/plain", "admin", b"/admin/plain"),
    ],
)
async def test_routes_match_the_path_the_backend_receives(
    apps: dict[str, App], target: bytes, app: str, forwarded: bytes
) -> None:
    async with running_proxy(two_routes(apps)) as proxy:
        assert await get(proxy.port, target) == (200, app.encode())
    assert apps[app].lines == [b"GET " + forwarded + b" HTTP/1.1"]


@pytest.mark.parametrize("target", [b"/public/%zz", b"/admin%2", b"/a%4g"])
async def test_a_malformed_escape_is_400_and_reaches_no_backend(
    apps: dict[str, App], target: bytes
) -> None:
    async with running_proxy(two_routes(apps)) as proxy:
        status, body = await get(proxy.port, target)
    assert status == 400
    assert b"hex digits" in body
    assert apps["admin"].lines == apps["public"].lines == []


async def test_merge_slashes_joins_empty_segments(apps: dict[str, App]) -> None:
    async with running_proxy(two_routes(apps, merge_slashes=True)) as proxy:
        assert await get(proxy.port, b"//admin///users/") == (200, b"admin")
    assert apps["admin"].lines == [b"GET /admin/users/ HTTP/1.1"]


async def test_normalize_path_off_routes_and_forwards_the_raw_path(apps: dict[str, App]) -> None:
    async with running_proxy(two_routes(apps, normalize_path=False)) as proxy:
        assert await get(proxy.port, b"/public/../admin") == (200, b"public")
        assert await get(proxy.port, b"/x/%zz") == (200, b"public")
    assert apps["public"].lines == [b"GET /public/../admin HTTP/1.1", b"GET /x/%zz HTTP/1.1"]


async def test_an_absolute_form_target_is_normalised_too(apps: dict[str, App]) -> None:
    async with running_proxy(two_routes(apps)) as proxy:
        assert await get(proxy.port, b"http://example.com/public/../admin?x=1") == (
            200,
            b"admin",
        )
    assert apps["admin"].lines == [b"GET /admin?x=1 HTTP/1.1"]
