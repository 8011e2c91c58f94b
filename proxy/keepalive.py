"""Whether a client connection outlives the response being written, and how it closes when it
does not: the one place both are decided.

Theory of operation. The answer is written into the response head (`Connection: close` or not),
so it is decided once, when the head is produced: for a relayed response (proxy.exchange) and for
a problem document (proxy.failures.fail_to_proxy) alike. After that the connection closes only
when it must (the data plane began draining, or the response could not be completed), never
against what the head said it would do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.headers import FRAME_CLOSE, FRAME_NONE
from proxy.lifecycle import RECEIVED

if TYPE_CHECKING:
    from proxy.exchange import Exchange


def keeps_alive(request_read: bool, upgrade: bool, framing: int, closing: bool) -> bool:
    """True when the connection can carry another request after this response, for a client
    that allows it (HTTP/1.1 without `Connection: close`, or 1.0 with keep-alive) and broke no
    protocol rule: the callers ask only for such a client (`client_allows`), so that the common
    `Connection: close` case costs one test.

    `request_read`: its request was read whole, so the next bytes are a new request; `upgrade`:
    it asked to switch protocols and did not (it may already be talking the new protocol: it
    cannot be resynchronised); `framing`: the response is delimited by closing; `closing`: the
    connection closes after this response anyway (draining, or an error to answer after it)."""
    return request_read and not upgrade and framing != FRAME_CLOSE and not closing


def client_allows(x: Exchange) -> bool:
    """The client allows keep-alive and broke no protocol rule."""
    return x.head.keep_alive and x.rejection is None


def after_failure(x: Exchange) -> bool:
    """keeps_alive for a problem document answering a request that could not be proxied. A
    bodiless request failed from on_headers_complete (no route...) is complete although llhttp
    has not yet called on_message_complete: the connection can still be reused. (Whether the
    error allows it is fail_to_proxy's part.)"""
    return client_allows(x) and keeps_alive(
        x.body == RECEIVED or not x.head.has_body, False, FRAME_NONE, x.ds.closes_after(x)
    )


def client_is_done(x: Exchange) -> bool:
    """When the connection closes after `x`: whether it may close at once instead of lingering.
    True when the client asked to close (Connection: close, or HTTP/1.0 without keep-alive), its
    request was read whole and well-formed, and nothing followed it. Closing at once then cannot
    reset a response the client is still reading, so the lingering close (two more system calls
    and an event-loop turn per connection) is kept for clients that may still be sending: an
    unread body, a protocol error, pipelined requests, a refused upgrade, a keep-alive client
    that does not know the proxy is draining. nginx decides the same way."""
    head, ds = x.head, x.ds
    return (
        not head.keep_alive
        and x.body == RECEIVED
        and x.rejection is None
        and head.upgrade is None
        and not ds.queue
        and not ds.in_head
        and not ds.closing
        and not ds.dp.draining
    )
