"""The data plane's pure rules, table-driven: whether a connection outlives a response
(proxy.keepalive.keeps_alive) and what a client gets for an error (fail_to_proxy)."""

from __future__ import annotations

import orjson
import pytest

from proxy.failures import (
    BadRequest,
    NoRoute,
    ProxyError,
    UpstreamConnectFailed,
    UpstreamTimeout,
    fail_to_proxy,
)
from proxy.headers import FRAME_CHUNKED, FRAME_CLOSE, FRAME_LENGTH, FRAME_NONE
from proxy.keepalive import keeps_alive


@pytest.mark.parametrize(
    ("request_read", "upgrade", "framing", "closing", "expected"),
    [
        (True, False, FRAME_LENGTH, False, True),
        (True, False, FRAME_CHUNKED, False, True),
        (True, False, FRAME_NONE, False, True),
        # its body is still arriving: the next bytes are not a request
        (False, False, FRAME_LENGTH, False, False),
        # it asked to switch protocols and was refused
        (True, True, FRAME_LENGTH, False, False),
        # the response ends when the connection does
        (True, False, FRAME_CLOSE, False, False),
        # draining, or an error to answer after this response
        (True, False, FRAME_LENGTH, True, False),
    ],
)
def test_keeps_alive(
    request_read: bool, upgrade: bool, framing: int, closing: bool, expected: bool
) -> None:
    assert keeps_alive(request_read, upgrade, framing, closing) is expected


@pytest.mark.parametrize(
    ("error", "started", "reusable", "status", "keep_alive"),
    [
        (UpstreamConnectFailed("refused", retry_safe=True), False, True, 502, True),
        (UpstreamTimeout("slow"), False, True, 504, True),
        (NoRoute("none"), False, True, 404, True),
        (ProxyError("internal error"), False, True, 500, True),
        # a request keeps_alive would not keep stays closed whatever the error
        (UpstreamTimeout("slow"), False, False, 504, False),
        # the client's own error leaves its connection in an unknown state
        (BadRequest("malformed"), False, True, 400, False),
    ],
)
def test_fail_to_proxy_answers_with_a_problem(
    error: ProxyError, started: bool, reusable: bool, status: int, keep_alive: bool
) -> None:
    failure = fail_to_proxy(
        error, started=started, reusable=reusable, request_id=b"abc", head_only=False, debug=None
    )
    assert (failure.status, failure.keep_alive) == (status, keep_alive)
    assert failure.response is not None
    head, _, body = failure.response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    assert (b"\r\nConnection: close" in head) is not keep_alive
    assert b"Content-Type: application/problem+json" in head
    problem = orjson.loads(body)
    assert problem["status"] == status
    assert problem["type"] == "urn:turnout:problem:" + error.slug
    assert problem["requestId"] == "abc"
    assert failure.body_bytes == len(body)


def test_fail_to_proxy_after_the_response_started_closes() -> None:
    failure = fail_to_proxy(
        UpstreamTimeout("slow"),
        started=True,
        reusable=True,
        request_id=None,
        head_only=False,
        debug=None,
    )
    assert failure.response is None
    assert failure.keep_alive is False


def test_fail_to_proxy_for_head_sends_no_body_and_counts_none() -> None:
    failure = fail_to_proxy(
        NoRoute("none"), started=False, reusable=True, request_id=None, head_only=True, debug=b"x"
    )
    assert failure.response is not None
    assert failure.response.endswith(b"\r\n\r\n")
    assert b"x-turnout-decision: x\r\n" in failure.response
    assert failure.body_bytes == 0
