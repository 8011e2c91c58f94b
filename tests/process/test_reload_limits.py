"""A reload's limits bind requests that begin after it, never a request already in flight.

Runs `turnout run` as a subprocess in front of a real aiohttp backend in the test process; the
reload goes through the admin API (blocking, so in a thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from helpers import Backend, ProxyProcess, config, proxy_process, start_backend, toml


@pytest.fixture
async def slow() -> AsyncIterator[Backend]:
    async def answer_slowly(request: web.Request) -> web.StreamResponse:
        if request.path == "/late":
            await asyncio.sleep(3.0)
            return web.Response(text="late")
        # Streamed in three parts: each read moves the request's deadline by its read_timeout,
        # so the part at 1.5 s (after the reload) is where a changed limit would show.
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"a")
        await asyncio.sleep(1.5)
        await response.write(b"b")
        await asyncio.sleep(3.0)
        await response.write(b"c")
        await response.write_eof()
        return response

    backend = await start_backend("slow", answer_slowly)
    yield backend
    await backend.stop()


async def _get(port: int, path: str = "/") -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.read()


async def test_a_request_in_flight_keeps_the_read_timeout_it_started_with(
    slow: Backend,
) -> None:
    data = config(
        {"slow": [slow.url]}, {"web": {"weights": {"slow": 1}}}, upstream={"read_timeout": 5.0}
    )
    with proxy_process(data) as proxy:
        in_flight = asyncio.create_task(_get(proxy.port))
        await _wait_until_seen(slow, 1)
        await _reload(proxy, {**data, "upstream": {"read_timeout": 0.5}})
        # The request began under read_timeout = 5 s: the backend's pauses of 1.5 s and 3 s
        # are within it, so the whole body arrives.
        assert await in_flight == (200, b"abc")
        # One that begins after the acknowledged reload has 0.5 s.
        status, _ = await _get(proxy.port, "/late")
        assert status == 504


async def _wait_until_seen(backend: Backend, count: int) -> None:
    for _ in range(200):
        if len(backend.seen) >= count:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("the backend never saw the request")


async def _reload(proxy: ProxyProcess, data: dict[str, object]) -> None:
    edited = {
        **data,
        "listen": {"host": "127.0.0.1", "port": proxy.port},
        "admin": {"port": proxy.admin_port},
        "process": {"workers": 1},
    }
    proxy.config_path.write_text(toml(edited))
    status, body = await asyncio.to_thread(proxy.admin, "POST", "/v1/reload")
    assert status == 200, body
