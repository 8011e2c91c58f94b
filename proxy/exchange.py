"""One request and its response, proxied: the data plane's phases, in order.

    start()          capture the snapshot -> admit (done by the parser) -> request meta (pure)
                     -> decide (pure) -> pick a backend (pure) -> upstream head (pure)
    forward          pick a backend, take a pooled connection or open one; write head and
                     body; retry or fail over when that is safe (proxy.selection)
    response_*       relay the backend's response, re-framed, as it arrives (flush per read)
    fail()           fail-to-proxy (proxy.failures.fail_to_proxy, pure): error -> problem+json,
                     or close if the response had started
    finish()         give the connection back, count and log (proxy.observation), let the
                     client connection go on (proxy.keepalive decided whether it may)

The exchange's lifecycle is two state values, `phase` and `body` (proxy.lifecycle).

Theory of operation. Everything is driven by I/O callbacks; no coroutine runs per request
except to open a new upstream connection. Bodies stream: each chunk the client sends is written
to the backend as it arrives (or buffered, bounded, until the backend connection exists), and
each chunk of the response is written to the client within the same event-loop turn that read
it. Flow control is symmetric: a full backend send buffer pauses reading from the client, a
full client send buffer pauses reading from the backend, so memory stays flat whatever the
body size.

Retries happen only when they cannot duplicate work (proxy.selection). Once a response byte has
been relayed, a failure closes the client connection instead of inventing a status.
"""

from __future__ import annotations

from random import getrandbits
from time import perf_counter
from typing import TYPE_CHECKING, Final

from proxy.admission import request_meta
from proxy.exchange_failures import client_lost, fail, timed_out, upstream_failed, upstream_lost
from proxy.failures import (
    NoRoute,
    ProxyError,
    UpstreamBadResponse,
)
from proxy.headers import (
    FRAME_CHUNKED,
    FRAME_NONE,
    LAST_CHUNK,
    RequestHead,
    ResponseHead,
    chunk,
    downstream_response_head,
    response_framing,
    rule_values,
    upstream_request_head,
)
from proxy.keepalive import keeps_alive
from proxy.lifecycle import (
    AWAITING,
    FINISHED,
    QUEUED,
    RECEIVED,
    RECEIVING,
    RESPONDED,
    RESPONDING,
    ROUTING,
)
from proxy.observation import count_under, explain, record
from proxy.selection import REPLAY_LIMIT, forward
from router import Decision, decide

if TYPE_CHECKING:
    from proxy.dataplane import Installed, Target
    from proxy.downstream import Downstream
    from proxy.upstream import UpstreamConnection

BUFFER_LIMIT: Final = 256 * 1024
"""Client body bytes held while no backend connection is ready before reading pauses."""


def _small(out: list[bytes]) -> bool:
    """Whether these few buffers are worth copying into one (a native loop, no map/sum)."""
    size = 0
    for part in out:
        size += len(part)
    return size <= 16384


class Exchange:
    __slots__ = (
        "attempts",
        "body",
        "bytes_in",
        "bytes_out",
        "decision",
        "dp",
        "ds",
        "failed_over",
        "framing",
        "head",
        "head_at",
        "installed",
        "keep_alive",
        "limits",
        "out",
        "pending",
        "pending_bytes",
        "phase",
        "rejection",
        "request_id",
        "reused",
        "sent",
        "sent_bytes",
        "stale_retried",
        "started_at",
        "stats",
        "status",
        "target",
        "tried",
        "upstream",
        "upstream_at",
        "upstream_head",
    )

    def __init__(
        self,
        downstream: Downstream,
        head: RequestHead,
        installed: Installed,
        rejection: ProxyError | None = None,
    ) -> None:
        self.ds = downstream
        self.dp = downstream.dp
        self.head = head
        self.installed = installed
        self.limits = installed.limits
        """`installed.limits`, read often enough to be kept at hand."""
        self.rejection = rejection
        self.decision: Decision | None = None
        self.target: Target | None = None
        self.tried: list[int] = []
        """Indices into the current pool's eligible backends already tried."""
        self.attempts = 0
        self.failed_over = False
        self.upstream: UpstreamConnection | None = None
        self.upstream_head = b""
        self.request_id = head.request_id or b""
        self.pending: list[bytes] | None = None
        """Request bytes waiting for the backend connection; None (no list made and freed per
        request) until there are any, which is rare: a connection is usually ready first."""
        self.pending_bytes = 0
        self.sent: list[bytes] | None = []
        """The body sent on the current connection after its head, held for a replay (see
        selection.retry_stale); None once too large or a response began."""
        self.sent_bytes = 0
        self.reused = False
        self.stale_retried = False
        self.phase = QUEUED
        self.body = RECEIVING if head.expect is None else AWAITING
        self.framing = FRAME_NONE
        self.keep_alive = False
        """Whether the client connection goes on after this response (proxy.keepalive)."""
        self.out: list[bytes] = []
        self.stats = downstream.dp.no_route
        """The (route, pool) counters this request is counted under (proxy.metrics)."""
        self.status = 0
        """The status the client got (499: it went away first, as nginx logs it)."""
        self.started_at = 0.0
        self.upstream_at = 0.0
        self.head_at = 0.0
        self.bytes_in = 0
        self.bytes_out = 0

    # Phases

    def start(self) -> None:
        """Route the request and begin forwarding it. Called when it is first in line."""
        self.phase = ROUTING
        self.started_at = perf_counter()
        self.stats.inflight += 1
        # Routing begins now, so it uses the object installed now: once every worker has
        # acknowledged a change, no request routes by the old state (a drained backend gets
        # nothing new). The request keeps it, limits included, to its end. The head was parsed
        # keeping the headers the parse-time rules read.
        head = self.head
        installed = self.dp.installed
        if installed is not self.installed:
            if installed.rule_headers != self.installed.rule_headers:
                pairs = list(zip(head.headers[0::2], head.headers[1::2], strict=True))
                head.rule_values = rule_values(pairs, installed.rule_headers)
            self.installed = installed
            self.limits = installed.limits
        self.ds.progress(self.limits.read_timeout)
        if self.rejection is not None:
            self.fail(self.rejection)
            return
        if not self.request_id:
            self.request_id = self.dp.new_request_id()
        snapshot = installed.snapshot
        decision = self.decision = decide(
            request_meta(head, self.dp.route_host(head.host), snapshot),
            snapshot,
            self.dp.secure_roll() if installed.issues_ids else getrandbits(64),
        )
        if decision.pool is None:
            self.fail(NoRoute("no route matches this request's host and path"))
            return
        assert decision.route is not None
        count_under(self, decision.route.name, decision.pool.name)
        if head.host:
            self.upstream_head = self.build_upstream_head(head.host)
        forward(self, None)

    def build_upstream_head(self, host: bytes) -> bytes:
        """Phase: the head the backend gets (pure; see proxy.headers)."""
        head = self.head
        ds = self.ds
        trusted = ds.trusted
        return upstream_request_head(
            head,
            host=host,
            forwarded_for=(
                head.forwarded_for + b", " + ds.peer_ip
                if trusted and head.forwarded_for
                else ds.peer_ip
            ),
            forwarded_proto=(head.forwarded_proto if trusted and head.forwarded_proto else b"http"),
            forwarded_host=(head.forwarded_host if trusted and head.forwarded_host else head.host),
            request_id=self.request_id,
        )

    # Request body, from the client

    def request_body(self, data: bytes) -> None:
        if self.phase == FINISHED:
            return
        self.bytes_in += len(data)
        connection = self.upstream
        if self.head.chunked:
            pieces: tuple[bytes, ...] = chunk(data)
        else:
            pieces = (data,)
        if connection is not None:
            connection.writelines(list(pieces))
            sent = self.sent
            if sent is not None:
                self.sent_bytes += len(data)
                if self.sent_bytes <= REPLAY_LIMIT:
                    sent += pieces
                else:
                    self.sent = None
        else:
            pending = self.pending
            if pending is None:
                self.pending = pending = []
            pending += pieces
            self.pending_bytes += len(data)
            if self.pending_bytes > BUFFER_LIMIT:
                self.ds.pause_reading(self.ds.PAUSE_BUFFER)
        if self.phase != QUEUED:
            self.ds.progress(self.limits.read_timeout)

    def request_raw(self, data: bytes) -> None:
        """Bytes after an upgrade request: the new protocol's, sent on unframed."""
        if self.phase == FINISHED:
            return
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            if self.pending is None:
                self.pending = []
            self.pending.append(data)
            self.pending_bytes += len(data)
            self.sent = None

    def request_complete(self) -> None:
        self.body = RECEIVED
        if self.phase == FINISHED:
            return
        if self.head.chunked:
            if self.upstream is not None:
                self.upstream.write(LAST_CHUNK)
                if self.sent is not None:
                    self.sent.append(LAST_CHUNK)
            elif self.pending is None:
                self.pending = [LAST_CHUNK]
            else:
                self.pending.append(LAST_CHUNK)

    # Response, from the backend

    def response_interim(self, response: ResponseHead) -> None:
        # 100 Continue was answered by the proxy itself; other 1xx (103 Early Hints) pass on
        # to HTTP/1.1 clients (RFC 9110 §15.2: a 1.0 client must not get them).
        if response.status != 100 and self.head.version == b"1.1":
            self.sent = None  # the client has seen bytes of this response: never retry now
            self.out.append(
                downstream_response_head(
                    response, framing=FRAME_NONE, keep_alive=True, client_http11=True
                )
            )

    def response_head(self, response: ResponseHead) -> None:
        head = self.head
        self.phase = RESPONDING
        self.sent = None
        self.status = response.status
        if self.limits.access_log is not None:
            self.head_at = perf_counter()
        target = self.target
        if response.status >= 500:
            self.stats.attempt_errors += 1
            if target is not None:
                target.attempt_errors += 1
                target.answered(response.status, self.limits)
        elif target is not None and (target.failures or target.gateway_failures):
            target.answered(response.status, self.limits)
        decision = self.decision
        set_cookie = decision.set_cookie_bytes() if decision is not None else None
        debug = explain(self) if self.limits.decision_header else None
        if response.status == 101:
            if head.upgrade is None or response.upgrade is None:
                raise UpstreamBadResponse("101 Switching Protocols without an upgrade request")
            # The switch is a response like any other: a client whose first request is a
            # WebSocket must become sticky here, or each reconnect may land in another pool.
            self.out.append(
                downstream_response_head(
                    response,
                    framing=FRAME_NONE,
                    keep_alive=True,
                    client_http11=True,
                    set_cookie=set_cookie,
                    upgrade=response.upgrade,
                    debug=debug,
                )
            )
            return
        client_http11 = head.version == b"1.1"
        framing = self.framing = response_framing(response, head.method == b"HEAD", client_http11)
        # proxy.keepalive decides; a client that asked to close is not asked about further.
        keep_alive = False
        if head.keep_alive and self.rejection is None:  # keepalive.client_allows, inlined
            keep_alive = keeps_alive(
                self.body == RECEIVED,
                head.upgrade is not None,
                framing,
                self.ds.closes_after(self),
            )
        self.keep_alive = keep_alive
        self.out.append(
            downstream_response_head(
                response,
                framing=framing,
                keep_alive=keep_alive,
                client_http11=client_http11,
                set_cookie=set_cookie,
                debug=debug,
            )
        )

    def response_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        if self.framing == FRAME_CHUNKED:
            self.out += chunk(data)
        else:
            self.out.append(data)

    def response_complete(self) -> None:
        if self.framing == FRAME_CHUNKED:
            self.out.append(LAST_CHUNK)
        self.phase = RESPONDED

    def flush(self) -> None:
        """Write what the last read produced, in one call; finish if the response is complete."""
        out = self.out
        if out:
            ds = self.ds
            if not ds.closed:
                transport = ds.transport
                assert transport is not None
                # One buffer for a small response (head and body): a single send, no iovec.
                count = len(out)
                if count == 1:
                    transport.write(out[0])
                    out.clear()  # the transport keeps no reference to the list: reused
                elif count == 2 and len(out[0]) + len(out[1]) <= 16384:
                    # Head and body, the usual small response: one concatenation costs less
                    # than a join (which prepares a buffer view of each part).
                    transport.write(out[0] + out[1])
                    out.clear()
                elif count <= 4 and _small(out):
                    transport.write(b"".join(out))
                    out.clear()
                else:
                    transport.writelines(out)
                    self.out = []
            else:
                self.out = []
        if self.phase == RESPONDED:
            self.finish()
        else:
            self.ds.progress(self.limits.read_timeout)

    def upstream_upgraded(self, tail: bytes) -> None:
        """The backend switched protocols: from now on, bytes flow untouched both ways."""
        from proxy.tunnel import Tunnel

        connection = self.upstream
        target = self.target
        assert connection is not None
        assert target is not None
        self.ds.writelines([*self.out, tail])
        self.out = []
        self.phase = FINISHED
        record(self, 101)
        self.upstream = None
        self.target = None  # the tunnel holds the in-flight count until it closes
        Tunnel(self.ds, connection, target, self.limits.tunnel_idle_timeout)
        if self.pending:
            connection.writelines(self.pending)
            self.pending = None

    # Failures (proxy.exchange_failures)

    def upstream_lost(self, connection: UpstreamConnection) -> None:
        """The backend connection closed while serving this exchange."""
        upstream_lost(self, connection)

    def upstream_failed(self, error: ProxyError) -> None:
        """The backend's response broke the protocol, or could not be relayed."""
        upstream_failed(self, error)

    def timed_out(self) -> None:
        """The connection's deadline passed while this exchange was active."""
        timed_out(self)

    def reject(self, error: ProxyError) -> None:
        """The client connection broke protocol while this request was in progress."""
        self.rejection = error
        if self.phase != QUEUED:
            fail(self, error)

    def fail(self, error: ProxyError) -> None:
        """Fail-to-proxy: answer with a problem document, or close if too late for one."""
        fail(self, error)

    def client_lost(self) -> None:
        """The client went away: drop the backend side without reusing it."""
        client_lost(self)

    # Flow control

    def upstream_full(self) -> None:
        self.ds.pause_reading(self.ds.PAUSE_UPSTREAM)

    def upstream_drained(self) -> None:
        self.ds.resume_reading(self.ds.PAUSE_UPSTREAM)

    def client_full(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def client_drained(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()
        self.ds.progress(self.limits.read_timeout)

    # End

    def release_target(self) -> None:
        target = self.target
        if target is not None:
            self.target = None
            target.inflight -= 1

    def finish(self) -> None:
        if self.phase == FINISHED:
            return
        self.phase = FINISHED
        record(self, self.status)
        target = self.target
        if target is not None:
            self.target = None
            target.inflight -= 1
        # The loop's clock read once for the pool and the client connection's deadline: it is
        # a method call on the loop (~290 instructions), and libuv's clock stands still within
        # a turn of the loop anyway (it moves in whole milliseconds, between turns).
        now = self.dp.loop.time()
        connection = self.upstream
        if connection is not None:
            self.upstream = None
            # Given back only at a message boundary: the request was sent whole (it was read
            # whole while this connection was attached) and the response was read whole.
            if self.body == RECEIVED and connection.keep_alive:
                connection.pool.give_back(connection, self.limits.keepalive_per_backend, now)
            else:
                connection.close()
        self.ds.exchange_finished(self, now)
