"""The lean prober against real loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from proxy.health_probe import Prober

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMIT = 64 * 1024


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A loopback server; yields its port and a list that counts the connections it accepted."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, accepted
    finally:
        server.close()
        await server.wait_closed()


async def requests(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        yield head


def response(body: bytes, status: int = 200, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_one_kept_alive_connection_serves_many_probes() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for head in requests(reader):
            seen.append(head)
            writer.write(response(b"ok"))

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        answers = [await prober.probe("GET", "/healthz", None, 1.0, LIMIT) for _ in range(5)]
        prober.close()
    assert [(a.status, a.error) for a in answers] == [(200, None)] * 5
    assert len(accepted) == 1
    assert prober.connects == 1
    assert seen[0].startswith(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())


async def test_the_configured_host_header_is_sent() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for head in requests(reader):
            seen.append(head)
            writer.write(response(b""))

    async with serving(handler) as (port, _):
        prober = Prober("127.0.0.1", port)
        answer = await prober.probe("GET", "/h", "app.internal", 1.0, LIMIT)
        prober.close()
    assert answer.status == 200
    assert b"\r\nHost: app.internal\r\n" in seen[0]


async def test_a_server_that_closes_after_each_response_gets_a_new_connection_each_time() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response(b"ok", extra="Connection: close\r\n"))
        await writer.drain()

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        answers = [await prober.probe("GET", "/", None, 1.0, LIMIT) for _ in range(4)]
        prober.close()
    assert [(a.status, a.error) for a in answers] == [(200, None)] * 4
    assert len(accepted) == 4


async def test_an_idle_connection_closed_by_the_server_is_replaced_without_a_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one request and closes without saying so (an idle timeout on its side).
        await reader.readuntil(b"\r\n\r\n")
        writer.write(response(b"ok"))
        await writer.drain()

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        first = await prober.probe("GET", "/", None, 1.0, LIMIT)
        await asyncio.sleep(0.05)
        second = await prober.probe("GET", "/", None, 1.0, LIMIT)
        prober.close()
    assert (first.error, second.error) == (None, None)
    assert len(accepted) == 2


async def test_a_body_in_many_writes_is_read_up_to_the_limit() -> None:
    body = b"x" * 20_000 + b"status: ok" + b"y" * 10_000

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            for at in range(0, len(body), 1000):
                writer.write(body[at : at + 1000])
                await writer.drain()
                await asyncio.sleep(0)

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        whole = await prober.probe("GET", "/", None, 2.0, LIMIT, want_body=True)
        short = await prober.probe("GET", "/", None, 2.0, 15_000, want_body=True)
        again = await prober.probe("GET", "/", None, 2.0, LIMIT, want_body=True)
        prober.close()
    assert whole.error is None
    assert whole.body == body
    assert b"status: ok" in whole.body
    # Only the first 15,000 bytes count; the connection is dropped rather than read on.
    assert short.error is None
    assert short.body == body[:15_000]
    assert again.body == body
    assert len(accepted) == 2


async def test_a_chunked_body_and_a_body_ended_by_close_are_both_read() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in (b"sta", b"tus: ", b"ok"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstatus: ok")
        await writer.drain()

    async with serving(chunked) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        answers = [await prober.probe("GET", "/", None, 1.0, LIMIT, True) for _ in range(2)]
        prober.close()
    assert [a.body for a in answers] == [b"status: ok"] * 2
    assert len(accepted) == 1
    async with serving(until_close) as (port, _):
        prober = Prober("127.0.0.1", port)
        answer = await prober.probe("GET", "/", None, 1.0, LIMIT, True)
        prober.close()
    assert (answer.status, answer.body, answer.error) == (200, b"status: ok", None)


async def test_a_server_that_never_answers_times_out_and_the_next_probe_reconnects() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await prober.probe("GET", "/", None, 0.2, LIMIT)
        took = loop.time() - started
        second = await prober.probe("GET", "/", None, 0.2, LIMIT)
        prober.close()
    assert first.error == second.error == "timeout after 0.2 s"
    # asyncio runs a timer up to its clock resolution early (BaseEventLoop._run_once): a run
    # measured 0.19999999999709 s. Anything well short of 0.2 s would still fail.
    assert 0.2 - 0.005 <= took < 0.5
    assert len(accepted) == 2


async def test_a_refused_connection_fails_with_connect_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        prober = Prober("127.0.0.1", port)
        answer = await prober.probe("GET", "/", None, 1.0, LIMIT)
    assert answer.status is None
    assert answer.error is not None
    assert answer.error.startswith("connect failed: ")


async def test_a_malformed_response_head_fails_with_a_reason() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            writer.write(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        bad = [await prober.probe("GET", "/", None, 1.0, LIMIT) for _ in range(2)]
        prober.close()
    assert all(a.status is None and (a.error or "").startswith("bad response: ") for a in bad)
    assert len(accepted) == 2  # a connection that spoke nonsense is not reused


async def test_a_connection_closed_before_any_response_fails() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async with serving(handler) as (port, _):
        prober = Prober("127.0.0.1", port)
        answer = await prober.probe("GET", "/", None, 1.0, LIMIT)
        prober.close()
    assert answer.error == "connection closed before the response ended"


async def test_head_probes_and_interim_responses() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for head in requests(reader):
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 204 No\r\nContent-Length: 5\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
                writer.write(response(b"fine", 503))

    async with serving(handler) as (port, _):
        prober = Prober("127.0.0.1", port)
        head = await prober.probe("HEAD", "/", None, 1.0, LIMIT)
        get = await prober.probe("GET", "/", None, 1.0, LIMIT, want_body=True)
        prober.close()
    assert (head.status, head.error) == (204, None)
    assert (get.status, get.body, get.error) == (503, b"fine", None)


async def test_a_cancelled_probe_leaves_no_half_read_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in requests(reader):
            await asyncio.sleep(0.3)
            writer.write(response(b"late"))

    async with serving(handler) as (port, accepted):
        prober = Prober("127.0.0.1", port)
        task = asyncio.create_task(prober.probe("GET", "/", None, 1.0, LIMIT, True))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        answer = await prober.probe("GET", "/", None, 1.0, LIMIT, True)
        prober.close()
    assert (answer.status, answer.body) == (200, b"late")
    assert len(accepted) == 2
