"""Admitting a parsed request, and presenting it to the router: two pure phases.

`admit` applies the RFC 9112 rules llhttp leaves to the application (exactly one Host on
HTTP/1.1, supported versions and Expect values, no CONNECT, no Transfer-Encoding on HTTP/1.0),
rewrites an absolute-form target to origin form, which servers must accept (RFC 9112 §3.2.2)
but many backends do not, and normalises the path (router.paths) so that routing and the backend read the same one.
`request_meta` is the adapter from the parsed head to the router's `RequestMeta`.

`admit_request_line` runs the same llhttp settings and the same `admit` on a request described
in words (POST /v1/explain), so the admin API refuses exactly the targets the proxy refuses:
one judge for both, never a second reading of RFC 9112.
"""

from __future__ import annotations

from httptools import (
    HttpParserCallbackError,
    HttpParserError,
    HttpParserUpgrade,
    HttpRequestParser,
)

from proxy.failures import (
    BadRequest,
    ExpectationFailed,
    NotImplementedMethod,
    ProxyError,
    UriTooLong,
    VersionNotSupported,
)
from proxy.headers import (
    H_CONNECTION,
    H_CONTENT_LENGTH,
    H_COOKIE,
    H_EXPECT,
    H_HOST,
    H_REQUEST_ID,
    H_TRANSFER_ENCODING,
    H_UPGRADE,
    H_XFF,
    H_XFH,
    H_XFP,
    RequestHead,
    connection_tokens,
)
from router import RequestMeta, Snapshot, normalise_host
from router.paths import InvalidPath, normalise_target


def request_parser(protocol: object) -> HttpRequestParser:
    """llhttp as the data plane runs it on a client connection."""
    parser = HttpRequestParser(protocol)
    # Versions are checked by `admit` (RFC 9112 §2.3: HTTP/1.2 is served as 1.1, HTTP/2+
    # gets 505) instead of llhttp refusing everything but 0.9-2.0 with a bare 400.
    # Passed by position (lenient_version is the fifth): Cython parses keyword arguments at
    # some cost, and with a connection per request this runs per request.
    parser.set_dangerous_leniencies(None, None, None, None, True)
    return parser


def add_target(head: RequestHead, url: bytes, limit: int) -> None:
    """llhttp's on_url: the target may come in pieces; one longer than `limit` is 414."""
    head.target += url
    if len(head.target) > limit:
        raise UriTooLong("request target too long")


class _RequestLine:
    """The llhttp protocol of `admit_request_line`: only the target and the end are read."""

    def __init__(self, limit: int) -> None:
        self.head = RequestHead()
        self.limit = limit
        self.complete = False

    def on_url(self, url: bytes) -> None:
        add_target(self.head, url, self.limit)

    def on_headers_complete(self) -> None:
        self.complete = True  # where the data plane admits a request


def admit_request_line(
    method: bytes,
    target: bytes,
    host: bytes,
    limit: int,
    normalize: bool = True,
    merge_slashes: bool = False,
) -> tuple[RequestHead, ProxyError | None]:
    """`method target HTTP/1.1` with `Host: host`, read and admitted as the data plane reads
    and admits it off the wire; the head (target normalised) and the error the proxy would
    answer with, if any. `limit`: [downstream] max_header_bytes."""
    line = _RequestLine(limit)
    head = line.head
    parser = request_parser(line)
    try:
        # The Host field is set below, not written here: only the request line is in question.
        parser.feed_data(method + b" " + target + b" HTTP/1.1\r\nHost: -\r\n\r\n")
    except HttpParserUpgrade:
        pass  # CONNECT: llhttp stops after the head; `admit` answers it 501
    except HttpParserCallbackError as error:
        cause = error.__context__
        if isinstance(cause, ProxyError):
            return head, cause
        raise
    except HttpParserError as error:
        return head, BadRequest(f"malformed request: {error}")
    if not line.complete or head.target != target or parser.get_method() != method:
        # A space, CR or LF ended the line early: no client can send this as one target.
        return head, BadRequest("malformed request: not one request line")
    head.method = method
    head.host = host
    head.host_count = 1
    return head, admit(head, parser.get_http_version(), normalize, merge_slashes)


def admit(
    head: RequestHead, version: str, normalize: bool = True, merge_slashes: bool = False
) -> ProxyError | None:
    """Check and normalise a request head in place; the error to answer with, if any.
    `normalize`, `merge_slashes`: [downstream] normalize_path and merge_slashes."""
    if version == "1.1":
        head.version = b"1.1"
    elif version == "1.0":
        head.version = b"1.0"
        if head.chunked:
            # RFC 9112 §6.1: the framing of an HTTP/1.0 message with Transfer-Encoding is
            # faulty. HTTP/1.0 has no chunked coding, so a hop that speaks only 1.0 may have
            # read this body to the end of the connection while llhttp decodes chunks: the two
            # disagree where the request ends, the makings of a desync. Answering it and then
            # closing (HAProxy) would still send a backend a request whose body is in doubt;
            # a 400 before any backend is contacted (nginx) sends nothing at all, and no
            # genuine HTTP/1.0 client can be refused by it.
            return BadRequest("Transfer-Encoding in an HTTP/1.0 request")
    elif version.startswith("1."):
        head.version = b"1.1"  # RFC 9112 §2.3: a higher minor version is served as 1.1
    else:
        return VersionNotSupported(f"HTTP/{version} is not supported; use HTTP/1.1")
    if head.method == b"CONNECT":
        return NotImplementedMethod("CONNECT is not supported by a reverse proxy")
    target = head.target
    # An origin-form target (a "/" first: nearly every request) is not absolute-form, and is
    # known so without two lower-cased copies of its start.
    if target[:1] != b"/" and (
        target[:7].lower() == b"http://" or target[:8].lower() == b"https://"
    ):
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        query = rest.find(b"?")
        cut = min(i for i in (slash, query, len(rest)) if i != -1)
        authority, path = rest[:cut], rest[cut:]
        if not authority or b"@" in authority:
            return BadRequest("absolute-form target without a valid authority")
        head.host = authority  # RFC 9112 §3.2.2: the target's authority replaces Host
        head.host_count = 1
        head.target = path if path.startswith(b"/") else b"/" + path
    elif head.host_count > 1:
        return BadRequest("more than one Host header")
    elif head.host_count == 0 and head.version == b"1.1":
        return BadRequest("HTTP/1.1 request without a Host header")
    if normalize:
        try:
            head.target = normalise_target(head.target, merge_slashes)
        except InvalidPath as error:
            return BadRequest(str(error))
    if head.expect is not None:
        if head.expect.lower() != b"100-continue":
            return ExpectationFailed("only 'Expect: 100-continue' is supported")
        if head.version != b"1.1" or not head.has_body:
            head.expect = None  # nothing to wait for (RFC 9110 §10.1.1)
    return None


def request_meta(head: RequestHead, host: str, snapshot: Snapshot) -> RequestMeta:
    """What the router sees of a request; `host` is `route_host(head.host)`. The path and the
    cookie are decoded only when some route of `snapshot` reads them."""
    path = target_path(head.target) if snapshot.reads_path else "/"
    cookie = None
    if snapshot.reads_cookie and head.cookie is not None:
        cookie = head.cookie.decode("latin-1")
    return RequestMeta(host, path, head.rule_values, cookie)


def target_path(target: bytes) -> str:
    """The path of an admitted target, as routes match it: without the query."""
    query = target.find(b"?")
    return (target if query == -1 else target[:query]).decode("latin-1")


def route_host(raw: bytes | None) -> str:
    """The Host header as routes match it (see router.normalise_host)."""
    return normalise_host(raw.decode("latin-1")) if raw else ""


def take_special(head: RequestHead, kind: int, name: bytes, value: bytes) -> None:
    """A request header the proxy acts on (`kind`: proxy.headers' H_*), into `head`."""
    if kind == H_HOST:
        head.host = value
        head.host_count += 1
    elif kind == H_CONNECTION:
        head.connection += connection_tokens(value)
    elif kind == H_COOKIE:
        head.cookie = value if head.cookie is None else head.cookie + b"; " + value
        head.headers.append(name)
        head.headers.append(value)
    elif kind == H_CONTENT_LENGTH:
        head.content_length = value
    elif kind == H_TRANSFER_ENCODING:
        # llhttp rejects a final coding other than chunked only after on_headers_complete,
        # when the request may already be on a pooled connection; and it accepts
        # "gzip, chunked", whose gzip we would silently drop. Only one plain chunked passes.
        if head.chunked or value.strip().lower() != b"chunked":
            raise BadRequest("Transfer-Encoding other than a single 'chunked'")
        head.chunked = True
    elif kind == H_XFF:
        head.forwarded_for = (
            value if head.forwarded_for is None else head.forwarded_for + b", " + value
        )
    elif kind == H_XFP:
        head.forwarded_proto = head.forwarded_proto or value
    elif kind == H_XFH:
        head.forwarded_host = head.forwarded_host or value
    elif kind == H_REQUEST_ID:
        head.request_id = head.request_id or value
    elif kind == H_EXPECT:
        head.expect = value
    elif kind == H_UPGRADE:
        head.upgrade = value
    # else: other hop-by-hop fields, dropped
