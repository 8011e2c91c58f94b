"""Parsed message heads and the pure header transforms between client and backend.

Theory of operation. The HTTP parser (llhttp via httptools) has already rejected what could
desync a peer: Content-Length with Transfer-Encoding, duplicate Content-Length, bad chunk
sizes, bare CR/LF/NUL, obs-fold. What arrives here is well-formed; these functions decide what
crosses the proxy:

* Hop-by-hop headers (RFC 9110 §7.6.1) never cross, in either direction: Connection,
  Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, *and every header
  the Connection header names* (nginx and HAProxy forward those; we do not). A Connection
  header naming an end-to-end header the proxy itself relies on (Host, Content-Length) is
  ignored for that name rather than obeyed.
* Message framing is re-made, never copied: the body goes out with a Content-Length when the
  length is known, else chunked, so a peer never sees framing the proxy did not produce.
* X-Forwarded-For is appended to only when the client is a trusted proxy; otherwise it is
  replaced, so an untrusted client cannot forge an address in front of its own.
"""

from __future__ import annotations

from typing import Final

HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Never forwarded as received (RFC 9110 §7.6.1, plus the legacy Proxy-Connection)."""

PROTECTED: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
        b"cookie",
        b"set-cookie",
    }
)
"""End-to-end headers a Connection option may not remove (a client could otherwise strip
X-Forwarded-For or Host on its way to the backend)."""

CONNECTION_KEYWORDS: Final = frozenset({b"close", b"keep-alive", b"upgrade"})

# Request headers the downstream parser pulls out instead of copying through.
H_HOST: Final = 1
H_CONNECTION: Final = 2
H_HOP: Final = 3
H_CONTENT_LENGTH: Final = 4
H_TRANSFER_ENCODING: Final = 5
H_EXPECT: Final = 6
H_UPGRADE: Final = 7
H_COOKIE: Final = 8
H_XFF: Final = 9
H_XFP: Final = 10
H_XFH: Final = 11
H_REQUEST_ID: Final = 12

REQUEST_SPECIAL: Final[dict[bytes, int]] = {
    b"host": H_HOST,
    b"connection": H_CONNECTION,
    b"keep-alive": H_HOP,
    b"proxy-connection": H_HOP,
    b"te": H_HOP,
    b"trailer": H_HOP,
    b"content-length": H_CONTENT_LENGTH,
    b"transfer-encoding": H_TRANSFER_ENCODING,
    b"expect": H_EXPECT,
    b"upgrade": H_UPGRADE,
    b"cookie": H_COOKIE,
    b"x-forwarded-for": H_XFF,
    b"x-forwarded-proto": H_XFP,
    b"x-forwarded-host": H_XFH,
    b"x-request-id": H_REQUEST_ID,
}


NO_RULE_VALUES: Final[dict[str, str]] = {}
"""The rule values of every head no routing rule reads a header of: one shared dict, never
written (Downstream.on_header gives a head its own before writing), instead of an empty dict
made and freed per request."""


class RequestHead:
    """A client request's head as parsed, with the headers the proxy acts on pulled out.

    Filled field by field by the parser callbacks, then read-only.
    """

    __slots__ = (
        "chunked",
        "connection",
        "content_length",
        "cookie",
        "expect",
        "forwarded_for",
        "forwarded_host",
        "forwarded_proto",
        "headers",
        "host",
        "host_count",
        "keep_alive",
        "method",
        "request_id",
        "rule_values",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = b"1.1"
        self.headers: list[bytes] = []
        """End-to-end headers to copy to the backend, in order, with their original case: name,
        value, name, value... (flat: no tuple made and freed per header)."""
        self.host: bytes | None = None
        self.host_count = 0
        self.connection: tuple[bytes, ...] = ()
        """Lower-case tokens of the Connection header(s) (a tuple: most heads have none, and
        an empty tuple is shared where an empty list would be made and freed per request)."""
        self.content_length: bytes | None = None
        self.chunked = False
        self.expect: bytes | None = None
        self.upgrade: bytes | None = None
        self.cookie: bytes | None = None
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None
        self.forwarded_host: bytes | None = None
        self.request_id: bytes | None = None
        self.rule_values: dict[str, str] = NO_RULE_VALUES
        """Values of the headers routing rules read, by lower-case name."""
        self.keep_alive = True

    @property
    def has_body(self) -> bool:
        return self.chunked or (self.content_length is not None and self.content_length != b"0")

    @property
    def idempotent(self) -> bool:
        """RFC 9110 §9.2.2: safe to send twice."""
        return self.method in IDEMPOTENT


IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})


class ResponseHead:
    """A backend response's head as parsed (the upstream parser fills it)."""

    __slots__ = (
        "chunked",
        "connection",
        "content_length",
        "headers",
        "reason",
        "status",
        "upgrade",
    )

    def __init__(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[bytes] = []  # name, value, name, value... as RequestHead.headers
        self.connection: tuple[bytes, ...] = ()  # as RequestHead.connection
        self.content_length: bytes | None = None
        self.chunked = False
        self.upgrade: bytes | None = None


def rule_text(value: bytes) -> str:
    """A header value as routing rules compare it. RFC 9110 §5.5: a field value excludes the
    whitespace around it. llhttp drops the leading whitespace but keeps the trailing, so
    `x-canary: always ` would match neither `exact` nor `regex`; stripped here, once per
    rule-read header, every kind of rule sees the same value (headers no rule reads, and the
    header as forwarded, are untouched)."""
    return value.strip(b" \t").decode("latin-1")


def rule_values(headers: list[tuple[bytes, bytes]], names: frozenset[bytes]) -> dict[str, str]:
    """The values of the headers routing rules read, by lower-case name (repeated headers
    joined with ", ", as RFC 9110 §5.3 allows)."""
    values: dict[str, str] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in names:
            key = lname.decode("latin-1")
            text = rule_text(value)
            values[key] = text if key not in values else values[key] + ", " + text
    return values


def connection_tokens(value: bytes) -> tuple[bytes, ...]:
    """Lower-case tokens of a Connection header value."""
    simple = _SIMPLE_CONNECTION.get(value)
    if simple is not None:
        return simple  # nearly every value is one of these: no splitting
    return tuple(token.strip().lower() for token in value.split(b",") if token.strip())


_SIMPLE_CONNECTION: Final = {
    spelling: (spelling.lower(),)
    for spelling in (b"keep-alive", b"Keep-Alive", b"close", b"Close", b"upgrade", b"Upgrade")
}

REQUEST_SPECIAL_LENGTHS: Final = frozenset(len(name) for name in REQUEST_SPECIAL)
"""Lengths of the special request header names: a name of another length cannot be one, so it
is copied through without lower-casing it first."""


REQUEST_RULE: Final = 16
"""Added to a header's kind (H_*, or 0: copied through) in `request_header_actions` when a
routing rule reads that header."""

COMMON_REQUEST_HEADERS: Final = (
    b"accept",
    b"accept-encoding",
    b"accept-language",
    b"authorization",
    b"cache-control",
    b"content-type",
    b"if-modified-since",
    b"if-none-match",
    b"origin",
    b"pragma",
    b"referer",
    b"user-agent",
)
"""Request headers nearly every client sends that the proxy only copies through: listed so that
their usual spellings are found without lower-casing them (see `request_header_actions`)."""


def _spellings(lname: bytes) -> set[bytes]:
    """How clients spell a lower-case header name: as is, Capitalised-Parts, UPPER."""
    capitalised = b"-".join([part.capitalize() for part in lname.split(b"-")])
    return {lname, capitalised, lname.upper()}


def request_header_actions(rule_headers: frozenset[bytes]) -> dict[bytes, int]:
    """What the downstream parser does with a request header, by the name as it arrives.

    Every special or rule-read name is here in lower case, so a name missing from the dict is
    looked up again lower-cased; its usual spellings, and those of common headers that are only
    copied (0), are here too, so that most headers need no lower-cased copy at all (one dict
    lookup per header, built once per snapshot). The value is the H_* kind of the lower-case
    name, or 0, plus REQUEST_RULE when a routing rule reads it: exactly what the lower-cased
    name would give, as every spelling lower-cases to the name it was made from.
    """
    actions: dict[bytes, int] = {}
    for lname in (*COMMON_REQUEST_HEADERS, *REQUEST_SPECIAL, *rule_headers):
        action = REQUEST_SPECIAL.get(lname, 0)
        if lname in rule_headers:
            action += REQUEST_RULE
        for spelling in _spellings(lname):
            actions[spelling] = action
    return actions


def _named_by_connection(connection: tuple[bytes, ...]) -> frozenset[bytes] | None:
    """Extra header names to drop because the Connection header lists them (usually none:
    `Connection: keep-alive` or `close` name no header)."""
    if all(token in CONNECTION_KEYWORDS for token in connection):
        return None
    return frozenset(
        token for token in connection if token not in CONNECTION_KEYWORDS and token not in PROTECTED
    )


def _append_headers(
    parts: list[bytes], headers: list[bytes], connection: tuple[bytes, ...]
) -> None:
    """Append `headers` (name, value, ...) as lines to `parts`, each with its line break in
    front, leaving out those the Connection tokens name. Two headers to a piece (one build of
    eight items instead of eight pieces to join: see upstream_request_head)."""
    extra = _named_by_connection(connection) if connection else None
    count = len(headers)
    if extra is None:
        i = 0
        while i + 4 <= count:
            parts.append(
                b"\r\n%b: %b\r\n%b: %b"
                % (headers[i], headers[i + 1], headers[i + 2], headers[i + 3])
            )
            i += 4
        if i < count:
            parts.append(b"\r\n%b: %b" % (headers[i], headers[i + 1]))
        return
    for i in range(0, count, 2):
        name = headers[i]
        if name.lower() not in extra:
            parts.append(b"\r\n%b: %b" % (name, headers[i + 1]))


def upstream_request_head(
    head: RequestHead,
    *,
    host: bytes,
    forwarded_for: bytes,
    forwarded_proto: bytes,
    forwarded_host: bytes | None,
    request_id: bytes,
) -> bytes:
    """The request line and headers to send to the backend (HTTP/1.1, keep-alive).

    The body is framed by Content-Length when the client gave one, else chunked when the client
    sent chunked (the proxy re-chunks what it forwards), else there is none.
    """
    # Fewer, larger pieces: a join costs about a hundred instructions per piece (it takes a
    # buffer view of each), and past ten pieces it also allocates an array for them. Runs of
    # pieces are made into one by `%` formatting with %b only, which mypyc compiles to one
    # allocation and a memcpy per item (CPyBytes_Build): worth it from about four pieces on.
    parts = [b"%b %b HTTP/1.1\r\nHost: %b" % (head.method, head.target, host)]
    if head.headers:
        _append_headers(parts, head.headers, head.connection)
    if not forwarded_host:  # an HTTP/1.0 client may send no Host at all
        parts.append(
            b"\r\nX-Forwarded-For: %b\r\nX-Forwarded-Proto: %b\r\nX-Request-Id: %b"
            % (forwarded_for, forwarded_proto, request_id)
        )
    elif head.chunked or head.content_length is not None or head.upgrade is not None:
        parts.append(
            b"\r\nX-Forwarded-For: %b\r\nX-Forwarded-Proto: %b\r\nX-Forwarded-Host: %b"
            b"\r\nX-Request-Id: %b" % (forwarded_for, forwarded_proto, forwarded_host, request_id)
        )
    else:
        # The usual case, with the end of the head: done.
        parts.append(
            b"\r\nX-Forwarded-For: %b\r\nX-Forwarded-Proto: %b\r\nX-Forwarded-Host: %b"
            b"\r\nX-Request-Id: %b\r\n\r\n"
            % (forwarded_for, forwarded_proto, forwarded_host, request_id)
        )
        return b"".join(parts)
    if head.chunked:
        parts.append(b"\r\nTransfer-Encoding: chunked")
    elif head.content_length is not None:
        parts.append(b"\r\nContent-Length: ")
        parts.append(head.content_length)
    if head.upgrade is not None:
        parts.append(b"\r\nConnection: upgrade\r\nUpgrade: ")
        parts.append(head.upgrade)
    parts.append(b"\r\n\r\n")
    return b"".join(parts)


# How a response body is framed towards the client.
FRAME_NONE: Final = 0
FRAME_LENGTH: Final = 1
FRAME_CHUNKED: Final = 2
FRAME_CLOSE: Final = 3


def response_framing(response: ResponseHead, head_request: bool, client_http11: bool) -> int:
    """RFC 9112 §6.3: which framing the client gets for this response's body."""
    status = response.status
    if head_request or status < 200 or status in (204, 304):
        return FRAME_NONE
    if response.content_length is not None and not response.chunked:
        return FRAME_LENGTH
    # Chunked upstream, or a body delimited by the backend closing: chunk it for HTTP/1.1
    # clients (so the connection survives); an HTTP/1.0 client can only read until close.
    return FRAME_CHUNKED if client_http11 else FRAME_CLOSE


def downstream_response_head(
    response: ResponseHead,
    *,
    framing: int,
    keep_alive: bool,
    client_http11: bool,
    set_cookie: bytes | None = None,
    upgrade: bytes | None = None,
    debug: bytes | None = None,
) -> bytes:
    """The status line and headers to send to the client."""
    status, reason = response.status, response.reason
    cached = _STATUS_LINES.get(status)  # an int key: no tuple to build and hash
    if cached is not None and cached[0] == reason:
        status_line = cached[1]
    else:
        status_line = b"HTTP/1.1 %d %s" % (status, reason)
        if cached is None:  # the first reason phrase seen for a status is the one kept
            _STATUS_LINES[status] = (reason, status_line)
    # The status line is kept without its line break: each piece carries the break in front
    # of it, so there are fewer pieces to join (see upstream_request_head), and the last ends
    # the head. Appended one by one: no tuple per `+=`.
    parts = [status_line]
    if response.headers:
        _append_headers(parts, response.headers, response.connection)
    if response.content_length is not None and (framing in (FRAME_LENGTH, FRAME_NONE)):
        # Kept on HEAD and 304 too: it tells the client the size a GET would have returned.
        if response.status != 204 and response.status >= 200:
            parts.append(b"\r\nContent-Length: ")
            parts.append(response.content_length)
    elif framing == FRAME_CHUNKED:
        parts.append(b"\r\nTransfer-Encoding: chunked")
    if set_cookie is not None:
        parts.append(b"\r\nSet-Cookie: ")
        parts.append(set_cookie)
    if debug is not None:
        parts.append(b"\r\nx-turnout-decision: ")
        parts.append(debug)
    if upgrade is not None:
        parts.append(b"\r\nConnection: upgrade\r\nUpgrade: ")
        parts.append(upgrade)
        parts.append(b"\r\n\r\n")
    elif not keep_alive or framing == FRAME_CLOSE:
        parts.append(b"\r\nConnection: close\r\n\r\n")
    elif not client_http11:
        parts.append(b"\r\nConnection: keep-alive\r\n\r\n")
    else:
        parts.append(b"\r\n\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> tuple[bytes, bytes, bytes]:
    """One chunk of chunked transfer coding, as three buffers for writelines (no copy)."""
    return (b"%x\r\n" % len(data), data, b"\r\n")


LAST_CHUNK: Final = b"0\r\n\r\n"

_STATUS_LINES: Final[dict[int, tuple[bytes, bytes]]] = {}
"""Status lines already built: status -> (reason, line). Bounded: llhttp takes three digits."""
