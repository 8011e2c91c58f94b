"""Connections to backends: one response parser per connection, and a keep-alive pool per address.

Theory of operation. An `UpstreamConnection` serves one exchange at a time. It parses the
backend's response with llhttp and hands each event to its exchange; it never decides anything
itself. Between exchanges it rests in its `ConnectionPool`, most recently used first (warm
connections are reused, cold ones age out from the bottom). A connection is only ever given back
when the response was complete, the request fully sent and the backend agreed to keep it alive,
so a reused connection is always at a message boundary. Bytes arriving on an idle connection
mean it is no longer in a known state: it is closed.

The pool caps how many *idle* connections it keeps (`keepalive_per_backend`), never how many
can be open: concurrency is the backends' and clients' business, not a hidden proxy limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpResponseParser,
)

from proxy.failures import ProxyError, UpstreamBadResponse
from proxy.headers import ResponseHead, connection_tokens

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.tunnel import Tunnel


class HeadResponseDone(Exception):
    """Raised from on_headers_complete to stop the parser after a response to HEAD.

    llhttp cannot be told that a response has no body because the request was HEAD (httptools
    does not pass that return value through), so the parser is stopped at the end of the head and
    replaced by a fresh one; whatever the backend wrongly sent after the head is discarded with it.
    """


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "closed",
        "exchange",
        "expect_head_only",
        "head_bytes",
        "idle_since",
        "in_response",
        "max_head_bytes",
        "parser",
        "pool",
        "reading_paused",
        "response",
        "response_done",
        "reusable",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.closed = False
        self.response = ResponseHead()
        self.response_done = False
        self.in_response = False
        self.expect_head_only = False
        self.head_bytes = 0
        self.max_head_bytes = 0
        """The exchange's limit, set when it begins (a reload never changes it under it)."""
        self.idle_since = 0.0
        self.reading_paused = False
        self.reusable = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.pool.connected += 1

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_upstream(data)
            return
        exchange = self.exchange
        if exchange is None:
            # An idle connection has nothing to say; if it does, its state is unknown.
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            exchange.upstream_upgraded(data[upgrade.args[0] :])
            return
        except HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, HeadResponseDone):
                self.parser = HttpResponseParser(self)
                self.response_done = True
                exchange.response_complete()
            elif isinstance(cause, ProxyError):
                exchange.upstream_failed(cause)
                return
            else:
                raise
        except HttpParserError as error:
            exchange.upstream_failed(UpstreamBadResponse(f"invalid response: {error}"))
            return
        exchange.flush()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.connected -= 1
        if self.tunnel is not None:
            self.tunnel.upstream_closed()
            return
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            exchange.upstream_lost(self)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_full()
        elif self.tunnel is not None:
            self.tunnel.upstream_full()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_drained()
        elif self.tunnel is not None:
            self.tunnel.upstream_drained()

    # llhttp callbacks

    def on_message_begin(self) -> None:
        if self.response_done:
            raise UpstreamBadResponse("backend sent more than one response")
        # The head of the response before (or of an interim 1xx) is used up: nothing keeps it
        # after its callbacks (the client's head is built from it at once). Emptied in place
        # rather than a new object made and the old one freed, per response; its headers
        # list too (nothing holds it either).
        response = self.response
        response.status = 0
        response.reason = b""
        if response.headers:
            response.headers.clear()
        response.connection = ()
        response.content_length = None
        response.chunked = False
        response.upgrade = None
        self.in_response = True
        self.head_bytes = 0

    def on_status(self, reason: bytes) -> None:
        self.response.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > self.max_head_bytes:
            raise UpstreamBadResponse("response head too large")
        response = self.response
        size = len(name)
        kind = None
        if size < _LONGEST and _SPECIAL_LENGTHS[size]:
            # Most backends spell these as listed: one lookup, no lower-cased copy.
            kind = _RESPONSE_SPECIAL.get(name)
            if kind is None:
                kind = _RESPONSE_SPECIAL.get(name.lower())
        if kind is None:
            response.headers.append(name)
            response.headers.append(value)
        elif kind == _CONTENT_LENGTH:
            response.content_length = value
        elif kind == _TRANSFER_ENCODING:
            response.chunked = True  # llhttp has checked that chunked is last
        elif kind == _CONNECTION:
            response.connection += connection_tokens(value)
        elif kind == _UPGRADE:
            response.upgrade = value
        # else: other hop-by-hop fields, dropped

    def on_headers_complete(self) -> None:
        response = self.response
        response.status = self.parser.get_status_code()
        exchange = self.exchange
        assert exchange is not None
        if 100 <= response.status < 200 and response.status != 101:
            exchange.response_interim(response)
            return
        exchange.response_head(response)
        if self.expect_head_only:
            self.reusable = self.parser.should_keep_alive()
            raise HeadResponseDone

    def on_body(self, data: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None
        exchange.response_body(data)

    def on_message_complete(self) -> None:
        status = self.response.status
        if 100 <= status < 200:
            # Interim (1xx): the final response follows on the same connection. 101: llhttp
            # pauses right after this, and the upgrade handler takes the connection over.
            return
        self.response_done = True
        self.in_response = False
        # Read now: llhttp resets its flags for the next message as soon as this returns.
        self.reusable = self.parser.should_keep_alive()
        exchange = self.exchange
        assert exchange is not None
        exchange.response_complete()

    # Used by the exchange

    @property
    def keep_alive(self) -> bool:
        """The last response completed and the backend agreed to keep the connection."""
        return self.response_done and self.reusable and not self.closed

    def begin(self, exchange: Exchange, head_only: bool) -> None:
        """Start serving `exchange`: the next bytes from the backend are its response."""
        self.exchange = exchange
        self.max_head_bytes = exchange.limits.max_response_header_bytes
        self.expect_head_only = head_only
        self.reusable = False
        self.response_done = False
        self.in_response = False

    def awaiting_eof_completion(self) -> bool:
        """True when the response in progress is delimited by the backend closing (RFC 9112
        §6.3 rule 8): its end is the end of the connection, not an error."""
        response = self.response
        return (
            self.in_response
            and response.status >= 200
            and response.content_length is None
            and not response.chunked
            and response.status not in (204, 304)
            and not self.expect_head_only
        )

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        assert self.transport is not None
        self.transport.writelines(data)

    def close(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()


_CONTENT_LENGTH: Final = 0
_TRANSFER_ENCODING: Final = 1
_CONNECTION: Final = 2
_UPGRADE: Final = 3
_HOP: Final = 4
_LOWER_CASE: Final = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"upgrade": _UPGRADE,
    b"keep-alive": _HOP,
    b"proxy-connection": _HOP,
    b"te": _HOP,
    b"trailer": _HOP,
}
_RESPONSE_SPECIAL: Final = {
    **_LOWER_CASE,
    **{
        b"-".join([part.capitalize() for part in name.split(b"-")]): k
        for name, k in _LOWER_CASE.items()
    },
    b"TE": _HOP,
}
"""Response headers the proxy acts on or drops instead of copying, by lower-case name and by
their usual spelling (Content-Length), so that most lookups need no lower-cased copy."""
_LONGEST: Final = max(len(name) for name in _LOWER_CASE) + 1
_SPECIAL_LENGTHS: Final = bytes(
    [size in {len(name) for name in _LOWER_CASE} for size in range(_LONGEST)]
)
"""Indexed by a name's length: 1 if some special name has that length (most names do not)."""


class ConnectionPool:
    """Idle keep-alive connections to one backend address.

    The most recently given back is held apart in `hot`, the others in `older` (oldest first):
    a connection going to the pool and back between requests, as nearly every one does, then
    makes no list grow from empty and shrink to empty again (two reallocations of its storage
    per request, ~250 instructions)."""

    __slots__ = (
        "address",
        "connected",
        "host",
        "hot",
        "loop",
        "older",
        "port",
    )

    def __init__(self, host: str, port: int, *, loop: asyncio.AbstractEventLoop) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self.loop = loop
        self.hot: UpstreamConnection | None = None
        """The idle connection most recently given back, if any."""
        self.older: list[UpstreamConnection] = []
        """The other idle connections, oldest first."""
        self.connected = 0
        """Connections to this address open now, idle or busy."""

    @property
    def idle(self) -> list[UpstreamConnection]:
        """The idle connections, oldest first (a copy)."""
        return [*self.older] if self.hot is None else [*self.older, self.hot]

    def take(self) -> UpstreamConnection | None:
        """The most recently used idle connection still open, or None."""
        connection = self.hot
        if connection is not None:
            self.hot = None
            if not connection.closed:
                return connection
        older = self.older
        while older:
            connection = older.pop()
            if not connection.closed:
                return connection
        return None

    def give_back(self, connection: UpstreamConnection, max_idle: int, now: float) -> None:
        """`max_idle`: keepalive_per_backend of the request giving it back (the pool outlives
        installs; its limits are the requests'). `now`: the loop's time (`loop.time()`), which
        the caller has read already."""
        hot = self.hot
        if connection.closed or len(self.older) + (hot is not None) >= max_idle:
            connection.close()
            return
        connection.exchange = None
        connection.resume_reading()  # so that a close by the backend is noticed while idle
        connection.idle_since = now
        if hot is not None:
            self.older.append(hot)
        self.hot = connection

    async def open(self) -> UpstreamConnection:
        factory: Callable[[], UpstreamConnection] = lambda: UpstreamConnection(self)  # noqa: E731
        _, connection = await self.loop.create_connection(factory, self.host, self.port)
        return connection

    def sweep(self, now: float, idle_timeout: float) -> None:
        """Close connections idle for longer than `idle_timeout` (the oldest are first)."""
        older = self.older
        expired = 0
        for connection in older:
            if connection.closed:
                expired += 1
            elif now - connection.idle_since > idle_timeout:
                connection.close()
                expired += 1
            else:
                break
        if expired:
            del older[:expired]
        hot = self.hot
        if hot is not None and not older:  # all older ones expired: the newest is next
            if hot.closed:
                self.hot = None
            elif now - hot.idle_since > idle_timeout:
                hot.close()
                self.hot = None

    def close_all(self) -> None:
        for connection in self.older:
            connection.close()
        self.older.clear()
        if self.hot is not None:
            self.hot.close()
            self.hot = None
