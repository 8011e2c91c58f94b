"""A lean HTTP/1.1 prober: one kept-alive connection per backend, responses parsed by llhttp.

Theory of operation. The health checker probes every backend every few seconds; a full client
(aiohttp's ClientSession: a request object, a connector, a response object, stream readers) per
probe cost ~400 µs of CPU, most of the control plane's CPU at a few thousand backends. A probe
needs far less: write one precomputed request, feed what comes back to httptools' response parser
(the same llhttp as the data plane) and wait on one future.

Rules:
- One `Prober` per backend, one connection at a time. It is kept alive between probes and
  replaced when the peer closes it, when the response says `Connection: close` (or HTTP/1.0
  without keep-alive), after any failure, and after a HEAD (llhttp cannot be told a HEAD
  response has no body) or a body longer than `body_limit` (never read a whole large body).
- The timeout covers connecting and the whole response: one deadline per probe.
- A reused connection that the peer closed before sending a byte of the response (it closed an
  idle connection as we wrote) is retried once on a new connection, within the same deadline:
  the probe is idempotent and nothing was answered.
- A probe is stopped by its deadline timer or by the connection's loss, never by cancellation
  alone; a cancelled probe closes its connection, whose response is then unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

import httptools


@dataclass(slots=True)
class Answer:
    """What one probe got: a status (and up to body_limit bytes of body), or an error."""

    status: int | None
    body: bytes
    error: str | None


class _Failed(Exception):
    """A probe's failure, worded for the ejection message."""


class _Closed(_Failed):
    """The connection ended before the response; `answered`: some of it had arrived."""

    def __init__(self, answered: bool) -> None:
        super().__init__("connection closed before the response ended")
        self.answered = answered


Settle = Callable[[int, "_Failed | None"], None]
"""A probe's outcome: the status (0 with an error), or the error."""

Done = Callable[[int | None, bytes, str | None], None]
"""A probe's answer, as `Prober.send` reports it: (status, body, error), as in `Answer`."""


class Timeouts(Protocol):
    """Where `Prober.send` files a probe's deadline: a proxy.health_schedule.Deadlines, which
    calls `Prober.expire()` at the deadline unless the probe was answered (`forget`) first."""

    def watch(self, item: Prober, deadline: float, /) -> None: ...

    def forget(self, item: Prober, /) -> None: ...


def _settled(status: int, error: _Failed | None) -> None:
    """A probe already settled: later outcomes are ignored."""


class _Connection(asyncio.Protocol):
    """One connection to a backend, at most one probe in flight on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.parser = httptools.HttpResponseParser(self)
        self.settle: Settle | None = None
        """Told the probe's outcome, once; None: no probe in flight."""
        self.body: list[bytes] = []
        self.size = 0
        self.limit = 0
        self.keep = False
        self.head = False
        self.headers_done = False
        self.answered = False
        self.reusable = True

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.open = True

    def data_received(self, data: bytes) -> None:
        if self.settle is None:
            # Bytes nobody asked for: the stream can no longer be trusted.
            self.close()
            return
        self.answered = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(_Failed("bad response: unexpected protocol upgrade"))
        except httptools.HttpParserError as error:
            self._fail(_Failed(f"bad response: {error}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.reusable = False
        if self.settle is None:
            return
        if self.headers_done and not self.head:
            # A body delimited by the end of the connection (no Content-Length, not chunked)
            # ends here; a truncated one is judged on what arrived.
            self._done()
        else:
            self._settle(0, _Closed(self.answered))

    # llhttp callbacks

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head and self.parser.get_status_code() >= 200:
            self.reusable = False
            self._done()

    def on_body(self, body: bytes) -> None:
        if self.keep:
            self.body.append(body)
        self.size += len(body)
        if self.size >= self.limit:
            # Enough to judge; the rest is not read, so the connection cannot be reused.
            self.reusable = False
            self._done()

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            # An interim response (100 Continue, 103 Early Hints): the real one follows.
            self.headers_done = False
            self.body.clear()
            self.size = 0
            return
        if not self.parser.should_keep_alive():
            self.reusable = False
        self._done()

    # The probe's side

    def request(self, data: bytes, head: bool, keep: bool, limit: int, settle: Settle) -> None:
        assert self.transport is not None
        self.settle = settle
        self.body = []
        self.size = 0
        self.limit = limit
        self.keep = keep
        self.head = head
        self.headers_done = self.answered = False
        self.transport.write(data)

    def finish(self) -> bytes:
        """The probe is over: its body, and the connection closed unless it can be reused."""
        self.settle = None
        body = b"".join(self.body) if self.body else b""
        if not (self.reusable and self.open):
            self.close()
        return body[: self.limit]

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def _done(self) -> None:
        self._settle(self.parser.get_status_code(), None)

    def _fail(self, error: _Failed) -> None:
        self.reusable = False
        self._settle(0, error)
        self.close()

    def _settle(self, status: int, error: _Failed | None) -> None:
        settle = self.settle
        if settle is not None:
            # Once per probe: what follows in the same bytes, or the loss of the connection
            # after the answer, is not this probe's.
            self.settle = _settled
            settle(status, error)


class Prober:
    """Probes one backend (`host`, `port`) over a connection kept alive between probes.

    Two ways in: `probe` (a coroutine, any case) and `send` (no task, no future: the answer comes
    back through a callback), which the health checker uses on every probe; `send` does the common
    case itself (a kept-alive connection answers) and runs `probe`'s path in a task otherwise.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self.connects = 0
        """Connections opened so far (for tests and curiosity)."""
        self._connection: _Connection | None = None
        self._request: tuple[tuple[str, str, str | None], bytes] | None = None
        # The probe `send` has in flight.
        self._done: Done | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timeouts: Timeouts | None = None
        """Watching the deadline of the probe in flight on the kept-alive connection, if any."""
        self._task: asyncio.Task[None] | None = None
        self._within = 0.0
        self._deadline = 0.0
        self._args: tuple[str, str, str | None, int, bool] = ("GET", "/", None, 0, False)
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop of the first `send`: `asyncio.get_running_loop()` costs a getpid() system
        call each time (CPython checks the loop is not a forked parent's), one per probe."""

    def _data(self, method: str, path: str, host: str | None) -> bytes:
        key = (method, path, host)
        if self._request is None or self._request[0] != key:
            # Host: the configured one, or the backend's address (RFC 9110 §7.2).
            head = f"{method} {path} HTTP/1.1\r\nHost: {host or self.address}\r\n"
            head += "User-Agent: turnout-health\r\nAccept: */*\r\n\r\n"
            self._request = (key, head.encode("latin-1"))
        return self._request[1]

    # The callback way: one probe at a time

    def send(
        self,
        method: str,
        path: str,
        host: str | None,
        within: float,
        body_limit: int,
        want_body: bool,
        done: Done,
        timeouts: Timeouts | None = None,
    ) -> None:
        """Start one probe, as `probe` would; `done(status, body, error)` is called once with its
        answer, unless `close` is called first. One probe at a time per Prober. `timeouts`: where
        the deadline is watched (it calls `expire`) instead of one event-loop timer per probe; at
        thousands of probes a second the timers are a tenth of the prober's CPU."""
        assert self._done is None, "one probe at a time"
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._done = done
        self._within = within
        self._deadline = deadline = loop.time() + within
        self._args = (method, path, host, body_limit, want_body)
        connection = self._connection
        if connection is not None and connection.open and connection.reusable:
            connection.request(
                self._data(method, path, host), method == "HEAD", want_body, body_limit, self._sent
            )
            if timeouts is None:
                self._timer = loop.call_at(deadline, self._expired)
            else:
                self._timeouts = timeouts
                timeouts.watch(self, deadline)
        else:
            self._task = loop.create_task(self._slow(0))

    def _sent(self, status: int, error: _Failed | None) -> None:
        connection = self._connection
        assert connection is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._timeouts is not None:
            self._timeouts.forget(self)
            self._timeouts = None
        if error is None:
            self._answer(status, connection.finish(), None)
            return
        connection.finish()
        if isinstance(error, _Closed) and not error.answered:
            # An idle connection the peer closed as we wrote: once more, on a new one.
            self._task = asyncio.get_running_loop().create_task(self._slow(1))
            return
        self._answer(None, b"", str(error))

    def expire(self) -> None:
        """The `timeouts` of `send` say the deadline has passed: the probe waiting for its answer
        on the kept-alive connection ends (an answered or closed probe was forgotten there)."""
        self._timeouts = None
        if self._done is not None and self._task is None:
            self._expired()

    def _expired(self) -> None:
        self._timer = None
        if self._connection is not None:
            self._connection.settle = None
            self._connection.abort()
        self._answer(None, b"", f"timeout after {self._within:g} s")

    async def _slow(self, attempt: int) -> None:
        method, path, host, body_limit, want_body = self._args
        answer = await self._probe(
            method, path, host, self._within, self._deadline, body_limit, want_body, attempt
        )
        self._task = None
        self._answer(answer.status, answer.body, answer.error)

    def _answer(self, status: int | None, body: bytes, error: str | None) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(status, body, error)

    # The coroutine way

    async def probe(
        self,
        method: str,
        path: str,
        host: str | None,
        within: float,
        body_limit: int,
        want_body: bool = False,
    ) -> Answer:
        """One probe; failures come back as an `Answer` with an error, never raised.

        `within` seconds cover connecting and the whole response. With `want_body`, the answer
        holds the first `body_limit` bytes of the body; without, the body is read past (up to
        `body_limit`, to keep the connection) and not kept.
        """
        deadline = asyncio.get_running_loop().time() + within
        return await self._probe(method, path, host, within, deadline, body_limit, want_body, 0)

    async def _probe(
        self,
        method: str,
        path: str,
        host: str | None,
        within: float,
        deadline: float,
        body_limit: int,
        want_body: bool,
        first: int,
    ) -> Answer:
        loop = asyncio.get_running_loop()
        data = self._data(method, path, host)
        head = method == "HEAD"
        for attempt in range(first, 2):
            connection = self._connection
            reused = connection is not None and connection.open and connection.reusable
            if not reused:
                if connection is not None:
                    connection.close()
                self._connection = None
                try:
                    async with asyncio.timeout_at(deadline):
                        _, connection = await loop.create_connection(
                            _Connection, self.host, self.port
                        )
                except TimeoutError:
                    return Answer(None, b"", f"timeout after {within:g} s")
                except OSError as error:
                    return Answer(None, b"", f"connect failed: {error}")
                self.connects += 1
                self._connection = connection
            assert connection is not None
            waiter: asyncio.Future[int] = loop.create_future()
            connection.request(data, head, want_body, body_limit, _setter(waiter))
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                status = await waiter
            except TimeoutError:
                connection.abort()
                return Answer(None, b"", f"timeout after {within:g} s")
            except _Closed as error:
                connection.finish()
                if reused and not error.answered and attempt == 0:
                    continue  # an idle connection the peer closed as we wrote: once more
                return Answer(None, b"", str(error))
            except _Failed as error:
                connection.finish()
                return Answer(None, b"", str(error))
            except BaseException:
                connection.abort()  # cancelled mid-probe: the connection's state is unknown
                raise
            finally:
                timer.cancel()
            return Answer(status, connection.finish(), None)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection; a probe `send` started is dropped (its `done` is not called)."""
        self._done = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._timeouts is not None:
            self._timeouts.forget(self)
            self._timeouts = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._connection is not None:
            self._connection.settle = None
            self._connection.close()
            self._connection = None


def _setter(waiter: asyncio.Future[int]) -> Settle:
    def settle(status: int, error: _Failed | None) -> None:
        if not waiter.done():
            if error is None:
                waiter.set_result(status)
            else:
                waiter.set_exception(error)

    return settle


def _expire(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
