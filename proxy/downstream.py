"""A client connection: parse requests with llhttp, queue them, write responses in order.

Theory of operation. The parser turns bytes into events; this protocol turns events into
`Exchange`s. Requests are answered strictly in order: the first exchange in `queue` is the
active one; pipelined requests wait behind it with their bodies buffered (bounded: reading
pauses). Nothing reaches a backend until llhttp has accepted the request head, and the body is
forwarded only as llhttp decodes it, so framing the parser rejected (CL+TE, bad chunk sizes...)
never reaches a backend. After a protocol error the connection answers once and closes.

One deadline per connection, read by the data plane's sweeper (no timer per request):
waiting for a request head (slowloris: `header_timeout` from its first byte), an active exchange
(`read_timeout` since the last progress), idle keep-alive (`keepalive_timeout`), or a tunnel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, ClassVar, Final, cast

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from proxy.admission import add_target, admit, request_parser, take_special
from proxy.exchange import Exchange
from proxy.failures import (
    BadRequest,
    HeadersTooLarge,
    ProxyError,
    RequestTimeout,
)
from proxy.headers import (
    NO_RULE_VALUES,
    REQUEST_RULE,
    RequestHead,
    rule_text,
)
from proxy.keepalive import client_is_done
from proxy.lifecycle import QUEUED, RECEIVED

if TYPE_CHECKING:
    from proxy.dataplane import DataPlane, Limits
    from proxy.tunnel import Tunnel

log = logging.getLogger("turnout.proxy")

MAX_PIPELINED: Final = 16

LINGER: Final = 2.0
"""Seconds a closing connection keeps reading (and discarding) what the client still sends."""


class _StopParsing(Exception):
    """Raised from a parser callback once the connection is closing: parse nothing more."""


class _Inert:
    """The protocol of the parser a closed connection keeps: it receives nothing."""


_CLOSED_PARSER: Final = HttpRequestParser(_Inert())
"""One parser bound to nothing, shared by every closed connection."""


class Downstream(asyncio.Protocol):
    PAUSE_BUFFER = 1
    PAUSE_UPSTREAM = 2
    PAUSE_QUEUE = 4

    # llhttp callbacks this protocol does not take, said so: httptools looks each one up when
    # a connection's parser is made, and a missing attribute is a failed search of the whole
    # class hierarchy on every new connection.
    on_chunk_header: ClassVar[None] = None
    on_chunk_complete: ClassVar[None] = None

    __slots__ = (
        "closed",
        "closing",
        "completed_here",
        "deadline",
        "dp",
        "head",
        "head_began_here",
        "head_bytes",
        "head_raw",
        "header_count",
        "in_head",
        "installed",
        "limits",
        "lingering",
        "parser",
        "parsing",
        "paused",
        "peer_ip",
        "queue",
        "raw_to",
        "receiving",
        "transport",
        "trusted",
        "tunnel",
        "version_hint",
        "writing_paused",
    )

    def __init__(self, dp: DataPlane) -> None:
        self.dp = dp
        self.transport: asyncio.Transport | None = None
        self.parser = request_parser(self)
        self.queue: deque[Exchange] = deque()
        self.head: RequestHead | None = None
        installed = self.installed = dp.installed
        self.limits: Limits = installed.limits
        self.receiving: Exchange | None = None
        self.raw_to: Exchange | None = None
        self.tunnel: Tunnel | None = None
        self.in_head = False
        self.head_bytes = 0
        self.head_raw = 0
        self.head_began_here = False
        self.completed_here = False
        self.lingering = False
        self.parsing = False
        self.header_count = 0
        self.closing = False
        self.closed = False
        self.paused = 0
        self.writing_paused = False
        self.deadline = 0.0
        self.peer_ip = b""
        self.trusted = False
        self.version_hint = ""
        """The HTTP version of the first head of the current read, when the read itself shows
        it (see data_received); "" when the parser must be asked."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        self.peer_ip = address.encode()
        self.trusted = self.limits.is_trusted(address)
        self.dp.track(self)
        self.progress(self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.from_client(data)
            return
        if self.raw_to is not None:
            self.raw_to.request_raw(data)
            return
        if self.closing:
            return  # answering a protocol error, or lingering before close: discard
        self.head_began_here = False
        self.completed_here = False
        self.parsing = True
        if not self.in_head and self.receiving is None:
            # The read starts at a message boundary, so the first head completing in it is the
            # one whose request line starts the read (after any empty lines), and llhttp only
            # completes a head whose request line ends at the first LF. When that line ends in
            # " HTTP/1.1\r\n" its version is "1.1": no get_http_version(), which httptools
            # builds with str.format (~2,300 instructions a request). Anything else (empty
            # lines first, 1.0, a split line, a bare LF) asks the parser as before.
            end = data.find(b"\n")
            if end >= 10 and data[end - 10 : end + 1] == b" HTTP/1.1\r\n":
                self.version_hint = "1.1"
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade as upgrade:
            exchange = self.receiving
            assert exchange is not None
            self.raw_to = exchange
            tail = data[upgrade.args[0] :]
            if tail:
                exchange.request_raw(tail)
        except HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, ProxyError):
                self.reject(cause)
            elif not isinstance(cause, _StopParsing):
                log.error("internal error while parsing a request", exc_info=cause)
                self.reject(ProxyError("internal error"))
        except HttpParserError as error:
            self.reject(BadRequest(f"malformed request: {error}"))
        else:
            if self.in_head and self.head_began_here and not self.queue:
                # A head that did not arrive in one read: from now on it has header_timeout
                # to complete (slowloris). Heads that arrive whole never pay for this.
                self.progress(self.limits.header_timeout)
            if self.in_head and not (self.head_began_here and self.completed_here):
                # llhttp may hold a partial field that on_header has not seen yet, so raw
                # bytes are counted too: the whole read, unless a previous (pipelined) request
                # ended in it, where the split is unknown and the per-field count must do.
                self.head_raw += len(data)
                if self.head_raw > self.limits.max_header_bytes:
                    self.reject(HeadersTooLarge("request head too large"))
        finally:
            self.parsing = False
            self.version_hint = ""  # a head that completes in a later read asks the parser
        # Only now, with the whole read parsed, does a new request start: nothing reaches a
        # backend from a read that turned out to be malformed, and a small body goes out in
        # the same write as its head.
        self.start_next()

    def eof_received(self) -> bool:
        # A client that half-closes after its request still wants the response (RFC 9112
        # §9.6 allows it); keep the transport open while anything is pending. A lingering
        # connection has what it waited for: the client is done sending.
        return bool(self.queue) and not self.lingering

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:  # abort() has already closed it and told the data plane
            self.closed = True
            self.dp.forget(self)
        # The parser holds this protocol's bound methods: a reference cycle that only the
        # cyclic collector would free. With a connection per request that is garbage on every
        # request, and collections are pauses; a parser bound to nothing breaks the cycle.
        self.parser = _CLOSED_PARSER
        if self.tunnel is not None:
            self.tunnel.client_closed()
        for exchange in self.queue:
            exchange.client_lost()
        self.queue.clear()
        if self.receiving is not None:
            self.receiving.client_lost()
            self.receiving = None

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.tunnel is not None:
            self.tunnel.client_full()
        elif self.queue:
            self.queue[0].client_full()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.tunnel is not None:
            self.tunnel.client_drained()
        elif self.queue:
            self.queue[0].client_drained()

    # llhttp callbacks

    def on_message_begin(self) -> None:
        if self.closing:
            raise _StopParsing
        self.head = RequestHead()
        # Parse-time: which headers the rules read, and this head's limits. Routing captures
        # `installed` again when it begins (Exchange.start), so an acknowledged change binds
        # every request not yet routed.
        installed = self.installed = self.dp.installed
        self.limits = installed.limits
        self.in_head = True
        self.head_bytes = 0
        self.head_raw = 0
        self.head_began_here = True
        self.header_count = 0

    def on_url(self, url: bytes) -> None:
        head = self.head
        assert head is not None
        add_target(head, url, self.limits.max_header_bytes)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # trailer fields: discarded, as RFC 9110 §6.5.1 allows a proxy
        head = self.head
        assert head is not None
        self.header_count += 1
        self.head_bytes += len(name) + len(value) + 4
        if self.header_count > self.limits.max_headers:
            raise HeadersTooLarge(f"more than {self.limits.max_headers} header fields")
        installed = self.installed
        # Most names arrive spelled as the snapshot's table has them: one lookup, no
        # lower-cased copy (proxy.headers.request_header_actions).
        kind = installed.header_actions.get(name)
        if kind is None:
            if len(name) not in installed.header_lengths:
                head.headers.append(name)  # neither special nor read by a rule
                head.headers.append(value)
                return
            kind = installed.header_actions.get(name.lower(), 0)
        if kind >= REQUEST_RULE:
            kind -= REQUEST_RULE
            key = name.lower().decode("latin-1")
            values = head.rule_values
            if values is NO_RULE_VALUES:
                values = head.rule_values = {}  # the head's own: the shared one stays empty
            previous = values.get(key)
            text = rule_text(value)
            values[key] = text if previous is None else previous + ", " + text
        if kind == 0:
            head.headers.append(name)
            head.headers.append(value)
        else:
            take_special(head, kind, name, value)

    def on_headers_complete(self) -> None:
        head = self.head
        assert head is not None
        self.in_head = False
        if self.head_bytes > self.limits.max_header_bytes:
            raise HeadersTooLarge("request head too large")
        parser = self.parser
        head.method = parser.get_method()
        head.keep_alive = parser.should_keep_alive()
        if head.upgrade is not None and not parser.should_upgrade():
            head.upgrade = None
        version = self.version_hint
        if version:
            self.version_hint = ""  # only the read's first head: the next one asks the parser
        else:
            version = parser.get_http_version()
        limits = self.limits
        rejection = admit(head, version, limits.normalize_path, limits.merge_slashes)
        exchange = Exchange(self, head, self.installed, rejection)
        self.receiving = exchange
        self.queue.append(exchange)
        if rejection is not None:
            self.closing = True
        if len(self.queue) > MAX_PIPELINED:
            self.pause_reading(self.PAUSE_QUEUE)

    def on_body(self, data: bytes) -> None:
        exchange = self.receiving
        assert exchange is not None
        exchange.request_body(data)

    def on_message_complete(self) -> None:
        exchange = self.receiving
        assert exchange is not None
        self.completed_here = True
        head = self.head
        self.head = None
        if head is not None:
            # llhttp's upgrade flag, known without asking it: set at the end of the head for
            # CONNECT, or for an Upgrade that llhttp accepted, which is the only one
            # on_headers_complete keeps in head.upgrade.
            upgrading = head.upgrade is not None or head.method == b"CONNECT"
        else:
            upgrading = self.parser.should_upgrade()
        if not upgrading:
            self.receiving = None
        exchange.request_complete()

    # Used by exchanges

    def exchange_finished(self, exchange: Exchange, now: float) -> None:
        """`exchange` is answered. `now`: the loop's time, read by the exchange already (the
        deadline moves from it as `progress` would move it)."""
        queue = self.queue
        if queue:
            # Popped, and put back in the rare case it is not this exchange (a tunnel emptied
            # the queue, say): indexing a deque is a generic call under mypyc (~110
            # instructions), more than a pop costs.
            first = queue.popleft()
            if first is not exchange:
                queue.appendleft(first)
        if self.closed:
            return
        if not exchange.keep_alive or (self.closing and not queue) or self.dp.draining:
            if client_is_done(exchange):
                self.abort()  # nothing more can come from the client: no need to linger
            else:
                self.close()
            return
        if self.paused:
            reasons = self.PAUSE_UPSTREAM | self.PAUSE_BUFFER
            if len(queue) <= MAX_PIPELINED:
                reasons |= self.PAUSE_QUEUE
            self.resume_reading(reasons)
        if queue:
            self.start_next()
        elif self.in_head:
            self.deadline = now + self.limits.header_timeout  # the next head's, as it began
        else:
            # Idle from now: the keep-alive timeout installed now.
            self.deadline = now + self.dp.installed.limits.keepalive_timeout

    def reject(self, error: ProxyError) -> None:
        """A protocol error on this connection: answer it (in order) and close."""
        self.closing = True
        self.in_head = False
        receiving = self.receiving
        if receiving is not None and receiving.body != RECEIVED:
            receiving.reject(error)
            return
        exchange = Exchange(self, self.head or RequestHead(), self.installed, error)
        exchange.body = RECEIVED
        self.queue.append(exchange)
        self.start_next()

    def start_next(self) -> None:
        """Start the first request in line, unless it runs already or the parser is busy."""
        if self.queue and not self.parsing and self.queue[0].phase == QUEUED:
            self.queue[0].start()

    def closes_after(self, exchange: Exchange) -> bool:
        """Whether the connection closes once `exchange` is answered: the data plane is
        draining, or it is the last one to answer after a protocol error."""
        return self.dp.draining or (self.closing and (not self.queue or self.queue[-1] is exchange))

    def drain(self, idle_deadline: float) -> None:
        """The data plane is draining. A busy connection closes after its current response
        (which says Connection: close); an idle one may still bring one more request, which is
        answered the same way, until `idle_deadline`."""
        if not self.queue and not self.in_head and not self.lingering:
            self.deadline = min(self.deadline, idle_deadline)

    def enter_tunnel(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.raw_to = None
        self.receiving = None
        self.queue.clear()

    def progress(self, timeout: float) -> None:
        """Something happened: the connection's deadline moves to `timeout` from now."""
        self.deadline = self.dp.loop.time() + timeout

    def expired(self) -> None:
        """The sweeper found the deadline passed."""
        if self.tunnel is not None:
            self.tunnel.timed_out()
        elif self.queue and self.queue[0].phase != QUEUED:
            self.queue[0].timed_out()
        elif self.lingering:
            self.abort()
        elif self.in_head:
            self.reject(
                RequestTimeout(f"request head not received within {self.limits.header_timeout:g} s")
            )
        else:
            self.abort()  # idle keep-alive connection, or one that never sent anything

    def write(self, data: bytes) -> None:
        if not self.closed:
            assert self.transport is not None
            self.transport.write(data)

    def writelines(self, data: list[bytes]) -> None:
        if not self.closed:
            assert self.transport is not None
            self.transport.writelines(data)

    def pause_reading(self, reason: int) -> None:
        if not self.paused and not self.closed:
            assert self.transport is not None
            self.transport.pause_reading()
        self.paused |= reason

    def resume_reading(self, reasons: int) -> None:
        if self.paused & reasons:
            self.paused &= ~reasons
            if not self.paused and not self.closed:
                assert self.transport is not None
                self.transport.resume_reading()

    def close(self) -> None:
        """Close gracefully: send what was written, then linger (RFC 9112 §9.6).

        Closing a socket with unread input makes the kernel answer with a reset, which can
        destroy the response still in flight (a 400 or 431 the client never sees). So the
        write side is shut first and the client's remaining bytes are read and discarded until
        it closes too, or for at most LINGER seconds.
        """
        if self.closed or self.lingering:
            return
        transport = self.transport
        assert transport is not None
        self.lingering = True
        self.closing = True
        if self.tunnel is None and transport.can_write_eof():
            transport.write_eof()
            self.paused = 0
            transport.resume_reading()
            self.progress(LINGER)
        else:
            self.abort()

    def abort(self) -> None:
        """Close now (after sending what was written); no lingering."""
        if not self.closed:
            self.closed = True
            self.dp.forget(self)
            assert self.transport is not None
            self.transport.close()
