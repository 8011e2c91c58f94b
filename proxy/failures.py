"""The proxy's own errors, the one boundary that maps I/O exceptions to them, and the
fail-to-proxy mapping from an error to the response a client gets.

Each error knows its source (the client, a backend, or turnout itself) and whether a retry is
safe: connect failures always are (nothing reached the backend); a reset on a reused keep-alive
connection before any response byte is safe for idempotent requests (the backend most likely
closed the idle connection as we wrote); a timeout never is (the backend may be working on it).
"""

from __future__ import annotations

import errno
from typing import ClassVar, Literal, NamedTuple

import orjson

Source = Literal["upstream", "downstream", "internal"]

PROBLEM_BASE = "urn:turnout:problem:"


class ProxyError(Exception):
    """An error with a defined response: status, problem type and title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal proxy error"
    source: ClassVar[Source] = "internal"

    def __init__(self, detail: str, *, retry_safe: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_safe = retry_safe


# Downstream: the client's request cannot be proxied as sent.


class BadRequest(ProxyError):
    status, slug, title, source = 400, "bad-request", "Malformed request", "downstream"


class RequestTimeout(ProxyError):
    """The request head did not arrive within header_timeout (slowloris)."""

    status, slug, title, source = 408, "request-timeout", "Request headers too slow", "downstream"


class BodyTimeout(ProxyError):
    """The request body stopped arriving: a problem type of its own, since RFC 9457 titles do
    not change from one occurrence of a type to the next."""

    status, slug, title, source = (
        408,
        "request-body-timeout",
        "Request body too slow",
        "downstream",
    )


class NotImplementedMethod(ProxyError):
    """CONNECT: turnout is a reverse proxy, not a forward one (RFC 9110 §15.6.2)."""

    status, slug, title, source = 501, "not-implemented", "Method not supported", "downstream"


class UriTooLong(ProxyError):
    status, slug, title, source = 414, "uri-too-long", "Request target too long", "downstream"


class ExpectationFailed(ProxyError):
    status, slug, title, source = 417, "expectation-failed", "Unsupported Expect", "downstream"


class HeadersTooLarge(ProxyError):
    status, slug, title, source = (
        431,
        "headers-too-large",
        "Request header fields too large",
        "downstream",
    )


class VersionNotSupported(ProxyError):
    status, slug, title, source = (
        505,
        "version-not-supported",
        "HTTP version not supported",
        "downstream",
    )


# Routing.


class NoRoute(ProxyError):
    status, slug, title, source = 404, "no-route", "No route matches", "internal"


class NoEligibleBackend(ProxyError):
    status, slug, title, source = (
        503,
        "no-eligible-backend",
        "No backend available",
        "internal",
    )


# Upstream: what went wrong talking to a backend.


class UpstreamConnectFailed(ProxyError):
    status, slug, title, source = 502, "upstream-connect-failed", "Backend unreachable", "upstream"


class UpstreamConnectTimeout(ProxyError):
    status, slug, title, source = (
        504,
        "upstream-connect-timeout",
        "Backend connect timed out",
        "upstream",
    )


class UpstreamReset(ProxyError):
    status, slug, title, source = (
        502,
        "upstream-reset",
        "Backend closed the connection",
        "upstream",
    )


class UpstreamTimeout(ProxyError):
    status, slug, title, source = 504, "upstream-timeout", "Backend timed out", "upstream"


class UpstreamBadResponse(ProxyError):
    status, slug, title, source = (
        502,
        "upstream-bad-response",
        "Backend sent an invalid response",
        "upstream",
    )


def map_connect_error(error: BaseException, address: str) -> ProxyError:
    """The boundary for connect-time exceptions: every one becomes a retry-safe ProxyError."""
    if isinstance(error, TimeoutError):
        return UpstreamConnectTimeout(f"connect to {address} timed out", retry_safe=True)
    if isinstance(error, OSError) and error.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
        return UpstreamConnectFailed(f"connect to {address} refused", retry_safe=True)
    return UpstreamConnectFailed(f"connect to {address} failed: {error}", retry_safe=True)


def problem_body(error: ProxyError, request_id: bytes | None = None) -> bytes:
    """An RFC 9457 problem document."""
    problem: dict[str, object] = {
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if request_id:
        problem["requestId"] = request_id.decode("latin-1")
    return orjson.dumps(problem)


REASONS: dict[int, bytes] = {
    400: b"Bad Request",
    404: b"Not Found",
    408: b"Request Timeout",
    414: b"URI Too Long",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}


def problem_response(
    error: ProxyError,
    body: bytes,
    *,
    keep_alive: bool,
    head_only: bool = False,
    debug: bytes | None = None,
) -> bytes:
    """The whole response (head and `body`, the problem_body) a client gets for `error`."""
    status = error.status
    head = [
        b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Error")),
        b"Content-Type: application/problem+json\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"Cache-Control: no-store\r\n",
    ]
    if debug is not None:
        head.append(b"x-turnout-decision: " + debug + b"\r\n")
    if not keep_alive:
        head.append(b"Connection: close\r\n")
    head.append(b"\r\n")
    if not head_only:
        head.append(body)
    return b"".join(head)


class Failure(NamedTuple):
    """What a client gets for an error: `response` is None when it is too late for a status
    (a response had started) and the connection must close so the client sees it incomplete."""

    status: int
    response: bytes | None
    keep_alive: bool
    body_bytes: int


def fail_to_proxy(
    error: ProxyError,
    *,
    started: bool,
    reusable: bool,
    request_id: bytes | None,
    head_only: bool,
    debug: bytes | None,
) -> Failure:
    """Fail-to-proxy, pure: the one mapping from an error to the client's answer.

    `started`: response bytes were already relayed; `reusable`: keeps_alive's verdict for this
    request had the answer been a success. An error the client caused (a malformed request)
    leaves the connection in an unknown state, so it closes."""
    if started:
        return Failure(error.status, None, False, 0)
    keep_alive = reusable and error.source != "downstream"
    body = problem_body(error, request_id)
    response = problem_response(
        error, body, keep_alive=keep_alive, head_only=head_only, debug=debug
    )
    return Failure(error.status, response, keep_alive, 0 if head_only else len(body))
