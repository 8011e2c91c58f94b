"""Selection and retry: which backend an exchange goes to, and when it may go to another.

Theory of operation. `forward` picks a backend of the decision's pool not tried yet (pure:
router.pick_backend) and sends the request on a pooled connection or a new one. Retries happen
only when they cannot duplicate work: a failed connect (nothing was sent) goes to another
backend, up to `retries` times; when every backend of the pool failed to connect before the
health checker noticed, the route's failover (router.fail_over) takes the request, once; a
reused keep-alive connection that the backend had closed (reset or EOF before any response
byte) is retried once on a fresh connection, and a fresh one closed so goes to another backend
(up to `retries`, as nginx's `proxy_next_upstream error`), both only for idempotent requests
whose bytes sent so far are still held (at most REPLAY_LIMIT): a backend may have acted on a
POST before it died.
"""

from __future__ import annotations

import asyncio
import logging
from random import getrandbits
from time import perf_counter, time
from typing import TYPE_CHECKING, Final

from proxy.failures import NoEligibleBackend, ProxyError, map_connect_error
from proxy.lifecycle import AWAITING, FINISHED, RECEIVED, RECEIVING
from proxy.observation import count_under
from router import fail_over, pick_backend

if TYPE_CHECKING:
    from proxy.dataplane import Target
    from proxy.exchange import Exchange
    from proxy.upstream import UpstreamConnection

log = logging.getLogger("turnout.proxy")

REPLAY_LIMIT: Final = 64 * 1024
"""Bytes of a request kept after sending, so a stale keep-alive connection can be retried."""

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def forward(x: Exchange, error: ProxyError | None) -> None:
    """Pick a backend not tried yet and send the request to it."""
    decision = x.decision
    assert decision is not None
    pool = decision.pool
    assert pool is not None
    targets = x.installed.targets[pool.name]
    # The clock is read only while some backend of the pool is in slow start, and the random
    # roll drawn only when there is a choice: pick_backend returns the only backend of a pool
    # without reading it (router.pick), and a 64-bit draw costs ~500 instructions.
    roll = getrandbits(64) if len(pool.eligible) > 1 else 0
    index = pick_backend(pool, targets, roll, x.tried, time() if pool.ramp else 0.0)
    if index is None:
        if error is not None:
            # Every backend of the pool failed to connect and the health checker has not
            # noticed yet: the route's failover takes the request, as it will take the pool's
            # users once it is ejected. Once per request.
            other = None if x.failed_over else fail_over(decision, pool.name, getrandbits(64))
            if other is not None and other.route is not None and other.pool is not None:
                x.decision, x.tried, x.failed_over = other, [], True
                count_under(x, other.route.name, other.pool.name)
                forward(x, error)
            else:
                x.fail(error)
        elif x.tried:
            x.fail(NoEligibleBackend(f"no backend left to try in pool {pool.name!r}"))
        else:
            x.fail(NoEligibleBackend(f"pool {pool.name!r} has no eligible backend"))
        return
    x.tried.append(index)
    x.attempts += 1
    # An upstream attempt of the pool (metrics.RouteStats): a retry_stale reconnect is not
    # one, it goes on with this attempt on a fresh connection.
    x.stats.attempts += 1
    target = x.target = targets[index]
    target.attempts += 1  # and the backend's, by the same rule
    target.inflight += 1
    if not x.head.host:
        # HTTP/1.0 without Host: name the backend, as a client talking to it would.
        x.upstream_head = x.build_upstream_head(target.address.encode())
    connection = target.connections.take()
    if connection is not None:
        attach(x, connection, True)
    else:
        x.dp.spawn(connect(x, target))


async def connect(x: Exchange, target: Target) -> None:
    if x.phase == FINISHED:
        return  # rejected while the connect waited to run (a framing error in the same read)
    try:
        async with asyncio.timeout(x.limits.connect_timeout):
            connection = await target.connections.open()
    except (OSError, TimeoutError) as exc:
        target.connect_errors += 1
        # Even when the client has gone: the backend failed this attempt all the same.
        x.stats.attempt_errors += 1
        target.attempt_errors += 1
        target.failed(x.limits)
        if x.phase != FINISHED:
            retry_or_fail(x, map_connect_error(exc, target.address))
        return
    if x.phase == FINISHED:
        # Never used: still at a clean boundary.
        target.connections.give_back(connection, x.limits.keepalive_per_backend, x.dp.loop.time())
        return
    try:
        attach(x, connection, False)
    except Exception:
        log.exception("internal error while forwarding")
        x.fail(ProxyError("internal error"))


def attach(x: Exchange, connection: UpstreamConnection, reused: bool) -> None:
    """Send head and buffered body on `connection`; later body chunks go straight to it."""
    x.upstream = connection
    if x.limits.access_log is not None:  # the clock is read only for the access log
        x.upstream_at = perf_counter()
    x.reused = reused
    connection.begin(x, head_only=x.head.method == b"HEAD")
    pending = x.pending
    transport = connection.transport
    assert transport is not None  # set by connection_made, before anyone can take it
    if pending:
        transport.writelines([x.upstream_head, *pending])
    else:
        transport.write(x.upstream_head)
    sent = x.sent
    if sent is not None:
        x.sent_bytes = len(x.upstream_head) + x.pending_bytes
        if x.sent_bytes > REPLAY_LIMIT:
            x.sent = None
        elif pending:
            x.sent = pending  # no longer pending, below
        elif sent:
            x.sent = []
        # else: the empty list the exchange began with (no body yet, first attempt) stays
        # empty: `sent` holds the body sent after the head, not the head (always
        # x.upstream_head), so a request without a body grows no list for its replay.
    if pending:
        x.pending = None
    x.pending_bytes = 0
    if x.body != RECEIVED:
        x.ds.resume_reading(x.ds.PAUSE_BUFFER)
        if x.body == AWAITING:
            # Envoy's default: the proxy answers Expect itself once it can take the body,
            # and the backend never sees Expect (it was not forwarded).
            x.body = RECEIVING
            x.ds.write(CONTINUE)


def retry_or_fail(x: Exchange, error: ProxyError) -> None:
    failed = x.target
    x.release_target()
    if error.retry_safe and x.attempts <= x.limits.retries:
        if failed is not None:
            failed.retries += 1
        forward(x, error)
    else:
        x.fail(error)


def retry_stale(x: Exchange) -> bool:
    """The backend closed a reused connection before answering: most likely it closed it while
    it sat idle. Send the request again on a fresh connection if that is safe (once)."""
    if not x.reused or x.stale_retried or not rewind(x):
        return False
    x.stale_retried = True
    target = x.target
    assert target is not None
    x.dp.spawn(connect(x, target))
    return True


def rewind(x: Exchange) -> bool:
    """Whether the request may be sent again after its connection was lost before any response
    byte: idempotent (RFC 9110 §9.2.2: a client may repeat it on its own), not an upgrade, and
    every byte sent so far still held. If so, those bytes go back in front of the ones waiting."""
    sent = x.sent
    if sent is None or not x.head.idempotent or x.head.upgrade is not None:
        return False
    x.pending = sent + x.pending if x.pending else sent
    x.pending_bytes += x.sent_bytes
    x.sent = []
    return True
