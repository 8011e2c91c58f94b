"""An exchange's failures: what it does when the backend, the client or a deadline lets it down.

Theory of operation. Before any response byte has been relayed, an error becomes a problem
document (fail_to_proxy, pure, decides status and keep-alive); after, the client connection is
closed so that it sees an incomplete response instead of an invented status. When a backend
closes a connection before answering, an idempotent request may go again, on a fresh connection
if the lost one was reused or else to another backend (proxy.selection decides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.failures import (
    BodyTimeout,
    ProxyError,
    UpstreamReset,
    UpstreamTimeout,
    fail_to_proxy,
)
from proxy.keepalive import after_failure
from proxy.lifecycle import FINISHED, QUEUED, RECEIVED, RESPONDED, RESPONDING
from proxy.observation import explain, record
from proxy.selection import retry_or_fail, retry_stale, rewind

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.upstream import UpstreamConnection


def upstream_lost(x: Exchange, connection: UpstreamConnection) -> None:
    """The backend connection closed while serving this exchange."""
    if x.phase == FINISHED or connection is not x.upstream:
        return
    x.upstream = None
    if x.phase >= RESPONDING:
        if connection.awaiting_eof_completion():
            x.response_complete()  # a body delimited by close has ended
            x.flush()
        else:
            abort_client(x)
        return
    if retry_stale(x):
        return  # a stale pooled connection: neither an attempt of its own nor an error
    x.stats.attempt_errors += 1
    target = x.target
    if target is not None:
        target.attempt_errors += 1
        target.failed(x.limits)
    # Another backend may take it if it may be sent twice (the stopped backend may have read
    # it: on loopback a connect completes before the backend accepts, and a backend that is
    # shutting down resets the connections it never accepted, requests and all).
    error = UpstreamReset("backend closed the connection before responding", retry_safe=rewind(x))
    retry_or_fail(x, error)


def upstream_failed(x: Exchange, error: ProxyError) -> None:
    connection = x.upstream
    x.upstream = None
    if connection is not None:
        connection.close()
    if x.phase >= RESPONDING:
        abort_client(x)
    else:
        x.stats.attempt_errors += 1  # no valid response head: not HTTP, or too large
        if x.target is not None:
            x.target.attempt_errors += 1
        fail(x, error)


def timed_out(x: Exchange) -> None:
    """The connection's deadline passed while this exchange was active."""
    if x.phase >= RESPONDING:
        abort_client(x)
    elif x.body != RECEIVED:
        fail(x, BodyTimeout(f"no request body received for {x.limits.read_timeout:g} s"))
    else:
        target = x.target
        if x.upstream is not None:
            # Sent and waiting for the response head. Still connecting: the connect's own
            # outcome (a failure, or a connection never used) is the attempt's.
            x.stats.attempt_errors += 1
            if target is not None:
                target.attempt_errors += 1
        if target is not None:
            target.timeouts += 1
            target.failed(x.limits)
        fail(x, UpstreamTimeout(f"no response within {x.limits.read_timeout:g} s"))


def fail(x: Exchange, error: ProxyError) -> None:
    """Fail-to-proxy: answer with a problem document, or close if too late for one."""
    if x.phase == FINISHED:
        return
    connection = x.upstream
    if connection is not None:
        x.upstream = None
        connection.close()
    head = x.head
    failure = fail_to_proxy(
        error,
        started=x.phase >= RESPONDING,
        reusable=after_failure(x),
        request_id=x.request_id or None,
        head_only=head.method == b"HEAD",
        debug=explain(x) if x.limits.decision_header else None,
    )
    response = failure.response
    if response is None:
        abort_client(x)
        return
    x.status = failure.status
    x.keep_alive = failure.keep_alive
    x.bytes_out += failure.body_bytes
    x.out.append(response)
    x.phase = RESPONDED
    x.flush()


def abort_client(x: Exchange) -> None:
    """Too late for a status: end the client connection so it sees an incomplete response."""
    x.keep_alive = False
    out = x.out
    x.out = []
    if out:
        x.ds.writelines(out)
    x.phase = RESPONDED
    x.finish()
    x.ds.close()


def client_lost(x: Exchange) -> None:
    """The client went away: drop the backend side without reusing it."""
    phase = x.phase
    if phase == FINISHED:
        return
    x.phase = FINISHED
    if phase != QUEUED:
        record(x, 499 if phase < RESPONDED else x.status)
    connection = x.upstream
    x.upstream = None
    if connection is not None:
        connection.close()
    x.release_target()
