"""Start and stop of a whole instance: readiness, SIGTERM under load, forced exits."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from helpers import TURNOUT, config, free_port, proxy_process, start_backend, toml


async def test_sigterm_lets_every_accepted_request_finish_and_exits_0() -> None:
    arrived = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal arrived
        arrived += 1
        await asyncio.sleep(0.8)
        return web.Response(text="done")

    backend = await start_backend("slow", slow)
    try:
        data = config({"slow": [backend.url]}, {"web": {"weights": {"slow": 1}}})
        data["process"] = {"shutdown_timeout": 5.0}
        with proxy_process(data, workers=2) as proxy:

            async def one() -> tuple[int, str, str]:
                async with aiohttp.ClientSession() as session:
                    url = f"http://127.0.0.1:{proxy.port}/"
                    async with session.get(url) as response:
                        return (
                            response.status,
                            await response.text(),
                            response.headers.get("Connection", ""),
                        )

            requests = [asyncio.create_task(one()) for _ in range(20)]
            while arrived < 20:
                await asyncio.sleep(0.01)
            proxy.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.1)
            status, body = await asyncio.to_thread(proxy.admin, "GET", "/ready")
            assert status == 503
            assert body["status"] == "draining"
            # A load balancer probing with HEAD sees the same: 503, and no body.
            assert await asyncio.to_thread(proxy.admin, "HEAD", "/ready") == (503, None)

            results = await asyncio.gather(*requests)
            code = await asyncio.to_thread(proxy.process.wait, 10)
            took = time.monotonic() - signalled
        # Every accepted request got its complete response, each saying the connection closes.
        assert results == [(200, "done", "close")] * 20
        assert code == 0
        assert took < 5.0
        # And nothing listens any more.
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        except ConnectionRefusedError:
            pass
        else:
            writer.close()
            raise AssertionError("still accepting connections after shutdown")
    finally:
        await backend.stop()


async def test_a_second_sigterm_forces_the_exit() -> None:
    async def stuck(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response(text="never")

    backend = await start_backend("stuck", stuck)
    try:
        data = config({"stuck": [backend.url]}, {"web": {"weights": {"stuck": 1}}})
        data["process"] = {"shutdown_timeout": 30.0}
        with proxy_process(data, workers=1) as proxy:
            async with aiohttp.ClientSession() as session:
                request = asyncio.create_task(session.get(f"http://127.0.0.1:{proxy.port}/"))
                while not backend.seen:
                    await asyncio.sleep(0.01)
                proxy.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                assert proxy.process.poll() is None  # draining: it would wait 30 s
                proxy.process.send_signal(signal.SIGTERM)
                started = time.monotonic()
                await asyncio.to_thread(proxy.process.wait, 10)
                assert time.monotonic() - started < 5
                request.cancel()
    finally:
        await backend.stop()


async def test_an_idle_keep_alive_connection_gets_one_last_answer_while_draining() -> None:
    backend = await start_backend("app")
    try:
        data = config({"app": [backend.url]}, {"web": {"weights": {"app": 1}}})
        with proxy_process(data, workers=1) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
            first = await reader.readuntil(b"\r\n\r\n")
            assert b"Content-Length: 3\r\n" in first
            assert await reader.readexactly(3) == b"app"
            assert b"Connection: close" not in first
            proxy.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            # The client did not know yet, and sends its next request on the same connection.
            writer.write(b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n")
            second = await asyncio.wait_for(reader.read(), 5)  # then the proxy closes
            writer.close()
            assert second.startswith(b"HTTP/1.1 200 ")
            assert b"Connection: close" in second
            assert await asyncio.to_thread(proxy.process.wait, 10) == 0
        assert [seen.path for seen in backend.seen] == ["/first", "/second"]
    finally:
        await backend.stop()


def test_a_non_loopback_admin_listener_is_refused(tmp_path: Path) -> None:
    data = config({"app": ["http://127.0.0.1:9"]}, {"web": {"weights": {"app": 1}}})
    data["listen"]["port"] = free_port()
    data["admin"] = {"host": "0.0.0.0", "port": free_port()}
    path = tmp_path / "turnout.toml"
    path.write_text(toml(data))
    result = subprocess.run(
        [TURNOUT, "run", "--config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "admin.host: 0.0.0.0 refused" in result.stderr
