"""WebSocket upgrades are proxied, and counted as in flight while open."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from helpers import config, running_proxy, start_backend


async def echo(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return web.Response(text="plain")
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type == aiohttp.WSMsgType.TEXT:
            await socket.send_str("echo:" + message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await socket.send_bytes(message.data[::-1])
    return socket


async def test_websocket_echo_through_the_proxy() -> None:
    backend = await start_backend("ws", echo)
    try:
        data = config({"ws": [backend.url]}, {"all": {"weights": {"ws": 1}}})
        async with running_proxy(data) as proxy, aiohttp.ClientSession() as session:
            [target] = proxy.dataplane.installed.targets["ws"]  # type: ignore[union-attr]
            async with session.ws_connect(f"http://127.0.0.1:{proxy.port}/chat") as socket:
                for index in range(100):
                    await socket.send_str(f"hello {index}")
                    assert (await socket.receive_str(timeout=2)) == f"echo:hello {index}"
                big = bytes(range(256)) * 1024
                await socket.send_bytes(big)
                assert (await socket.receive_bytes(timeout=2)) == big[::-1]
                # An open WebSocket counts as a request in flight (draining waits for it).
                assert target.inflight == 1
            for _ in range(100):
                if target.inflight == 0:
                    break
                await asyncio.sleep(0.01)
            assert target.inflight == 0
            # Plain requests still work next to it.
            async with session.get(f"http://127.0.0.1:{proxy.port}/") as response:
                assert await response.text() == "plain"
        [upgrade, _plain] = backend.seen
        assert upgrade.header("Upgrade") == "websocket"
        assert upgrade.header("Connection") == "upgrade"
        assert upgrade.header("Sec-WebSocket-Key")
    finally:
        await backend.stop()


async def test_a_refused_upgrade_is_relayed_and_the_connection_closed() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=403, text="no sockets here")

    backend = await start_backend("refuse", refuse)
    try:
        data = config({"refuse": [backend.url]}, {"all": {"weights": {"refuse": 1}}})
        async with running_proxy(data) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(
                b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            )
            answer = await asyncio.wait_for(reader.read(), 2)  # read until the proxy closes
            writer.close()
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert answer.endswith(b"no sockets here")
        assert b"Connection: close" in answer
    finally:
        await backend.stop()


async def test_the_switching_response_makes_the_client_sticky_and_explains_itself() -> None:
    """A client whose first request is a WebSocket gets its sticky cookie on the 101, so its
    next connect lands in the same pool; the decision header is there too when enabled."""
    backend = await start_backend("ws", echo)
    try:
        data = config(
            {"ws": [backend.url]},
            {"all": {"weights": {"ws": 1}, "sticky": {"cookie": "tid"}}},
            debug={"decision_header": True},
        )
        async with running_proxy(data) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(
                    b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                    b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            finally:
                writer.close()
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101 ")
        fields = [line.split(": ", 1) for line in lines[1:] if line]
        cookies = [value for name, value in fields if name.lower() == "set-cookie"]
        assert len(cookies) == 1, head
        assert cookies[0].startswith("tid=")
        [decision] = [value for name, value in fields if name.lower() == "x-turnout-decision"]
        assert "route=all rule=cookie pool=ws backend=ws-1 bucket=" in decision
        assert [value for name, value in fields if name.lower() == "upgrade"] == ["websocket"]
    finally:
        await backend.stop()
