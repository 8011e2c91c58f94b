"""The built-in load generator's connections end on a stop signal by themselves.

Cancellation alone is not enough on Python 3.11: `asyncio.wait_for` swallows a cancellation
that arrives as its request completes, and the connection then ran on to its deadline (a
loaded suite saw a generator ignore SIGTERM for 15 s). So each loop looks at the stop flag."""

from __future__ import annotations

import asyncio
import time

from benchmarks.loadgen import Stats, connection_loop, request_bytes

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _run_until_stopped() -> tuple[float, Stats]:
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stats = Stats()
    stopping: list[int] = []
    payload = request_bytes(f"http://127.0.0.1:{port}/", "GET", 0, close=False)
    deadline = time.monotonic() + 30
    async with server:
        # Never cancelled: only the flag can end it before its 30 s deadline.
        task = asyncio.create_task(
            connection_loop("127.0.0.1", port, payload, deadline, 2.0, stats, 0.01, stopping)
        )
        await asyncio.sleep(0.2)
        stopping.append(15)
        started = time.monotonic()
        await asyncio.wait_for(task, 5)
        return time.monotonic() - started, stats


def test_a_connection_ends_on_the_stop_flag_without_being_cancelled() -> None:
    took, stats = asyncio.run(_run_until_stopped())
    assert stats.latencies_ns, "the connection sent no request before the stop"
    assert took < 1.0, f"the connection ran {took:.2f} s after the stop flag"
