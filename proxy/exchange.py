"""One request and its response, proxied: the data plane's phases, in order.

    start()          capture the snapshot -> admit (done by the parser) -> request meta (pure)
                     -> decide (pure) -> pick a backend (pure) -> upstream head (pure)
    forward          take a pooled connection or open one; write head and body
    response_*       relay the backend's response, re-framed, as it arrives (flush per read)
    fail()           fail-to-proxy: error -> problem+json, or close if the response had started
    finish()         give the connection back, count, let the client connection go on

Theory of operation. Everything is driven by I/O callbacks; no coroutine runs per request
except to open a new upstream connection. Bodies stream: each chunk the client sends is written
to the backend as it arrives (or buffered, bounded, until the backend connection exists), and
each chunk of the response is written to the client within the same event-loop turn that read
it. Flow control is symmetric: a full backend send buffer pauses reading from the client, a
full client send buffer pauses reading from the backend, so memory stays flat whatever the
body size.

Retries happen only when they cannot duplicate work: a failed connect (nothing was sent) goes to
another backend; a reused keep-alive connection that the backend had closed (reset or EOF before
any response byte) is retried once on a fresh connection, for idempotent requests whose bytes
sent so far are still held (at most REPLAY_LIMIT). Once a response byte has been relayed, a
failure closes the client connection instead of inventing a status.
"""

from __future__ import annotations

import asyncio
import logging
from random import getrandbits
from time import perf_counter, time
from typing import TYPE_CHECKING, Final

from proxy.access_log import now as access_log_now
from proxy.admission import request_meta
from proxy.failures import (
    BodyTimeout,
    NoEligibleBackend,
    NoRoute,
    ProxyError,
    UpstreamBadResponse,
    UpstreamReset,
    UpstreamTimeout,
    map_connect_error,
    problem_body,
    problem_response,
)
from proxy.headers import (
    FRAME_CHUNKED,
    FRAME_CLOSE,
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
from proxy.metrics import NOT_ROUTED
from router import Decision, decide, fail_over_from, pick_backend

if TYPE_CHECKING:
    from proxy.dataplane import Installed, Target
    from proxy.downstream import Downstream
    from proxy.upstream import UpstreamConnection

log = logging.getLogger("turnout.proxy")

BUFFER_LIMIT: Final = 256 * 1024
"""Client body bytes held while no backend connection is ready before reading pauses."""

REPLAY_LIMIT: Final = 64 * 1024
"""Bytes of a request kept after sending, so a stale keep-alive connection can be retried."""

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def _small(out: list[bytes]) -> bool:
    """Whether these few buffers are worth copying into one (a native loop, no map/sum)."""
    size = 0
    for part in out:
        size += len(part)
    return size <= 16384


class Exchange:
    __slots__ = (
        "attempts",
        "bytes_in",
        "bytes_out",
        "decision",
        "dp",
        "ds",
        "failed_over",
        "finished",
        "framing",
        "head",
        "head_at",
        "installed",
        "keep_alive",
        "out",
        "pending",
        "pending_bytes",
        "rejection",
        "request_done",
        "request_id",
        "request_sent",
        "response_done",
        "response_started",
        "reused",
        "sent",
        "sent_bytes",
        "stale_retried",
        "started",
        "started_at",
        "stats",
        "status",
        "target",
        "tried",
        "upstream",
        "upstream_at",
        "upstream_head",
        "wants_continue",
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
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.sent: list[bytes] | None = []
        self.sent_bytes = 0
        self.reused = False
        self.stale_retried = False
        self.request_done = False
        self.request_sent = False
        self.response_started = False
        self.response_done = False
        self.framing = FRAME_NONE
        self.keep_alive = head.keep_alive and rejection is None
        self.wants_continue = head.expect is not None
        self.out: list[bytes] = []
        self.started = False
        self.finished = False
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
        self.started = True
        self.started_at = perf_counter()
        self.stats.inflight += 1
        self.ds.progress(self.dp.read_timeout)
        if self.rejection is not None:
            self.fail(self.rejection)
            return
        head = self.head
        if not self.request_id:
            self.request_id = self.dp.new_request_id()
        # Routing begins now, so it uses the snapshot installed now: once every worker has
        # acknowledged a change, no request routes by the old state (a drained backend gets
        # nothing new). The head was parsed keeping the headers the parse-time rules read.
        installed = self.dp.installed
        if installed is not self.installed:
            if installed.rule_headers != self.installed.rule_headers:
                head.rule_values = rule_values(head.headers, installed.rule_headers)
            self.installed = installed
        snapshot = installed.snapshot
        decision = self.decision = decide(
            request_meta(head, self.dp.route_host(head.host), snapshot),
            snapshot,
            getrandbits(64),
        )
        if decision.pool is None:
            self.fail(NoRoute("no route matches this request's host and path"))
            return
        assert decision.route is not None
        self.count_under(decision.route.name, decision.pool.name)
        if head.host:
            self.upstream_head = self.build_upstream_head(head.host)
        self.forward()

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

    def forward(self, error: ProxyError | None = None) -> None:
        """Pick a backend not tried yet and send the request to it."""
        decision = self.decision
        assert decision is not None
        pool = decision.pool
        assert pool is not None
        targets = self.installed.targets[pool.name]
        # The clock is read only while some backend of the pool is in slow start.
        index = pick_backend(
            pool, targets, getrandbits(64), self.tried, time() if pool.ramp else 0.0
        )
        if index is None:
            if error is not None:
                # Every backend of the pool failed to connect and the health checker has not
                # noticed yet: the route's other pools take the request, as they will take the
                # pool's users once it is ejected (router.fail_over_from). Once per request.
                other = (
                    None
                    if self.failed_over
                    else fail_over_from(decision, pool.name, getrandbits(64))
                )
                if other is not None and other.route is not None and other.pool is not None:
                    self.decision, self.tried, self.failed_over = other, [], True
                    self.count_under(other.route.name, other.pool.name)
                    self.forward(error)
                else:
                    self.fail(error)
            elif self.tried:
                self.fail(NoEligibleBackend(f"no backend left to try in pool {pool.name!r}"))
            else:
                self.fail(NoEligibleBackend(f"pool {pool.name!r} has no eligible backend"))
            return
        self.tried.append(index)
        self.attempts += 1
        target = self.target = targets[index]
        target.inflight += 1
        if not self.head.host:
            # HTTP/1.0 without Host: name the backend, as a client talking to it would.
            self.upstream_head = self.build_upstream_head(target.address.encode())
        connection = target.connections.take()
        if connection is not None:
            self.attach(connection, reused=True)
        else:
            self.dp.spawn(self.connect(target))

    async def connect(self, target: Target) -> None:
        if self.finished:
            return  # rejected while the connect waited to run (a framing error in the same read)
        try:
            async with asyncio.timeout(self.dp.connect_timeout):
                connection = await target.connections.open()
        except (OSError, TimeoutError) as exc:
            target.connect_errors += 1
            target.failed()
            if not self.finished:
                self.retry_or_fail(map_connect_error(exc, target.address))
            return
        if self.finished:
            target.connections.give_back(connection)  # never used: still at a clean boundary
            return
        try:
            self.attach(connection, reused=False)
        except Exception:
            log.exception("internal error while forwarding")
            self.fail(ProxyError("internal error"))

    def attach(self, connection: UpstreamConnection, reused: bool) -> None:
        """Send head and buffered body on `connection`; later body chunks go straight to it."""
        self.upstream = connection
        if self.dp.access_log is not None:  # the clock is read only for the access log
            self.upstream_at = perf_counter()
        self.reused = reused
        connection.begin(self, head_only=self.head.method == b"HEAD")
        pending = self.pending
        transport = connection.transport
        assert transport is not None  # set by connection_made, before anyone can take it
        if pending:
            transport.writelines([self.upstream_head, *pending])
        else:
            transport.write(self.upstream_head)
        if self.sent is not None:
            self.sent_bytes = len(self.upstream_head) + self.pending_bytes
            self.sent = [self.upstream_head, *pending] if self.sent_bytes <= REPLAY_LIMIT else None
        self.pending = []
        self.pending_bytes = 0
        if self.request_done:
            self.request_sent = True
        else:
            self.ds.resume_reading(self.ds.PAUSE_BUFFER)
            if self.wants_continue:
                # Envoy's default: the proxy answers Expect itself once it can take the body,
                # and the backend never sees Expect (it was not forwarded).
                self.wants_continue = False
                self.ds.write(CONTINUE)

    def retry_or_fail(self, error: ProxyError) -> None:
        failed = self.target
        self.release_target()
        if error.retry_safe and self.attempts <= self.dp.retries:
            if failed is not None:
                failed.retries += 1
            self.forward(error)
        else:
            self.fail(error)

    # Request body, from the client

    def request_body(self, data: bytes) -> None:
        if self.finished:
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
            self.pending += pieces
            self.pending_bytes += len(data)
            if self.pending_bytes > BUFFER_LIMIT:
                self.ds.pause_reading(self.ds.PAUSE_BUFFER)
        if self.started:
            self.ds.progress(self.dp.read_timeout)

    def request_raw(self, data: bytes) -> None:
        """Bytes after an upgrade request: the new protocol's, sent on unframed."""
        if self.finished:
            return
        if self.upstream is not None:
            self.upstream.write(data)
        else:
            self.pending.append(data)
            self.pending_bytes += len(data)
            self.sent = None

    def request_complete(self) -> None:
        self.request_done = True
        if self.finished:
            return
        if self.head.chunked:
            if self.upstream is not None:
                self.upstream.write(LAST_CHUNK)
                if self.sent is not None:
                    self.sent.append(LAST_CHUNK)
            else:
                self.pending.append(LAST_CHUNK)
        if self.upstream is not None:
            self.request_sent = True

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
        self.response_started = True
        self.sent = None
        self.status = response.status
        if self.dp.access_log is not None:
            self.head_at = perf_counter()
        target = self.target
        if target is not None and (
            response.status >= 500 or target.failures or target.gateway_failures
        ):
            target.answered(response.status)
        decision = self.decision
        cookie = decision.set_cookie_header() if decision is not None else None
        set_cookie = cookie.encode("latin-1") if cookie is not None else None
        debug = self.explain() if self.dp.decision_header else None
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
        # A client still sending its body, or one that asked to upgrade and was refused, cannot
        # be resynchronised: close after this response.
        self.keep_alive = keep_alive = (
            self.keep_alive
            and self.request_done
            and head.upgrade is None
            and framing != FRAME_CLOSE
            and not self.ds.closes_after(self)
        )
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
        self.response_done = True

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
                elif count <= 4 and _small(out):
                    transport.write(b"".join(out))
                else:
                    transport.writelines(out)
            self.out = []
        if self.response_done:
            self.finish()
        else:
            self.ds.progress(self.dp.read_timeout)

    def upstream_upgraded(self, tail: bytes) -> None:
        """The backend switched protocols: from now on, bytes flow untouched both ways."""
        from proxy.tunnel import Tunnel

        connection = self.upstream
        target = self.target
        assert connection is not None
        assert target is not None
        self.ds.writelines([*self.out, tail])
        self.out = []
        self.finished = True
        self.record(101)
        self.upstream = None
        self.target = None  # the tunnel holds the in-flight count until it closes
        Tunnel(self.ds, connection, target, self.dp.tunnel_idle_timeout)
        if self.pending:
            connection.writelines(self.pending)
            self.pending = []

    # Failures

    def upstream_lost(self, connection: UpstreamConnection) -> None:
        """The backend connection closed while serving this exchange."""
        if self.finished or connection is not self.upstream:
            return
        self.upstream = None
        if self.response_started:
            if connection.awaiting_eof_completion():
                self.response_complete()  # a body delimited by close has ended
                self.flush()
            else:
                self.abort_client()
            return
        if (
            self.reused
            and not self.stale_retried
            and self.sent is not None
            and self.head.idempotent
            and self.head.upgrade is None
        ):
            # The backend most likely closed this keep-alive connection while it sat idle.
            self.stale_retried = True
            self.pending = self.sent[1:] + self.pending
            self.pending_bytes += self.sent_bytes
            self.sent = []
            target = self.target
            assert target is not None
            self.dp.spawn(self.connect(target))
            return
        if self.target is not None:
            self.target.failed()
        self.retry_or_fail(UpstreamReset("backend closed the connection before responding"))

    def upstream_failed(self, error: ProxyError) -> None:
        connection = self.upstream
        self.upstream = None
        if connection is not None:
            connection.close()
        if self.response_started:
            self.abort_client()
        else:
            self.fail(error)

    def timed_out(self) -> None:
        """The connection's deadline passed while this exchange was active."""
        if self.response_started:
            self.abort_client()
        elif not self.request_done:
            self.fail(BodyTimeout(f"no request body received for {self.dp.read_timeout:g} s"))
        else:
            if self.target is not None:
                self.target.timeouts += 1
                self.target.failed()
            self.fail(UpstreamTimeout(f"no response within {self.dp.read_timeout:g} s"))

    def reject(self, error: ProxyError) -> None:
        """The client connection broke protocol while this request was in progress."""
        self.rejection = error
        self.keep_alive = False
        if self.started:
            self.fail(error)

    def fail(self, error: ProxyError) -> None:
        """Fail-to-proxy: answer with a problem document, or close if too late for one."""
        if self.finished:
            return
        connection = self.upstream
        if connection is not None:
            self.upstream = None
            connection.close()
        if self.response_started:
            self.abort_client()
            return
        # A bodiless request failed from on_headers_complete (no route...) is complete although
        # llhttp has not yet called on_message_complete: the connection can still be reused.
        self.status = error.status
        self.keep_alive = (
            self.keep_alive
            and (self.request_done or not self.head.has_body)
            and error.source != "downstream"
            and not self.ds.closes_after(self)
        )
        body = problem_body(error, self.request_id or None)
        head_only = self.head.method == b"HEAD"
        if not head_only:
            self.bytes_out += len(body)
        self.out.append(
            problem_response(
                error,
                body,
                keep_alive=self.keep_alive,
                head_only=head_only,
                debug=self.explain() if self.dp.decision_header else None,
            )
        )
        self.response_started = True
        self.response_done = True
        self.flush()

    def abort_client(self) -> None:
        """Too late for a status: end the client connection so it sees an incomplete response."""
        self.keep_alive = False
        out = self.out
        self.out = []
        if out:
            self.ds.writelines(out)
        self.response_done = True
        self.finish()
        self.ds.close()

    def client_lost(self) -> None:
        """The client went away: drop the backend side without reusing it."""
        if self.finished:
            return
        self.finished = True
        if self.started:
            self.record(499 if not self.response_done else self.status)
        connection = self.upstream
        self.upstream = None
        if connection is not None:
            connection.close()
        self.release_target()

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
        self.ds.progress(self.dp.read_timeout)

    # End

    def count_under(self, route: str, pool: str) -> None:
        """Count this request under (route, pool) from now on (its in-flight share moves)."""
        self.stats.inflight -= 1
        self.stats = self.dp.stats_for(route, pool)
        self.stats.inflight += 1

    def record(self, status: int) -> None:
        """Phase: log and measure. Counters always; the access log if on and sampled."""
        dp = self.dp
        dp.requests += 1
        # perf_counter, not loop.time(): libuv's loop clock moves in whole milliseconds.
        duration = perf_counter() - self.started_at
        stats = self.stats
        stats.inflight -= 1
        stats.bytes_in += self.bytes_in
        stats.bytes_out += self.bytes_out
        decision = self.decision
        rule = decision.rule if decision is not None else NOT_ROUTED
        stats.finished(status, rule, duration)
        log = dp.access_log
        if log is not None and log.wanted():
            log.write(self.log_fields(status, duration))

    def log_fields(self, status: int, duration: float) -> dict[str, object]:
        head, decision = self.head, self.decision
        target = head.target
        if not self.dp.access_log_query:
            target = target.split(b"?", 1)[0]
        upstream = self.head_at - self.upstream_at if self.head_at and self.upstream_at else None
        return {
            "time": access_log_now(),
            "id": self.request_id.decode("latin-1"),
            "client": self.ds.peer_ip.decode(),
            "method": head.method.decode("latin-1"),
            "path": target.decode("latin-1"),
            "status": status,
            "duration": round(duration, 6),
            "upstream": round(upstream, 6) if upstream is not None else None,
            "route": self.stats.route,
            "rule": decision.rule if decision is not None else NOT_ROUTED,
            "pool": self.stats.pool,
            "backend": self.backend_name,
            "bucket": decision.bucket if decision is not None else None,
            "in": self.bytes_in,
            "out": self.bytes_out,
            "fallback_from": decision.fallback_from if decision is not None else None,
        }

    @property
    def backend_name(self) -> str | None:
        """The backend of the last attempt (None when none was picked)."""
        decision = self.decision
        if decision is None or decision.pool is None or not self.tried:
            return None
        eligible = decision.pool.eligible
        index = self.tried[-1]
        return eligible[index].name if index < len(eligible) else None

    def explain(self) -> bytes:
        """The x-turnout-decision header's value (debugging only; see [debug])."""
        decision = self.decision
        stats = self.stats
        rule = decision.rule if decision is not None else NOT_ROUTED
        parts = [f"route={stats.route}", f"rule={rule}", f"pool={stats.pool}"]
        if decision is None:
            return " ".join(parts).encode("latin-1")
        # Like every other field, the backend is left out when there is none (a 503: the pool
        # had no backend to pick).
        backend = self.backend_name
        if backend is not None:
            parts.append(f"backend={backend}")
        if decision.rule_name is not None:
            parts.append(f"rule_name={decision.rule_name}")
        if decision.bucket is not None:
            parts.append(f"bucket={decision.bucket}")
        if decision.fallback_from is not None:
            parts.append(f"fallback_from={decision.fallback_from}")
        return " ".join(parts).encode("latin-1")

    def release_target(self) -> None:
        target = self.target
        if target is not None:
            self.target = None
            target.inflight -= 1

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.record(self.status)
        target = self.target
        if target is not None:
            self.target = None
            target.inflight -= 1
        connection = self.upstream
        if connection is not None:
            self.upstream = None
            if self.request_sent and connection.keep_alive:
                connection.pool.give_back(connection)
            else:
                connection.close()
        self.ds.exchange_finished(self)
