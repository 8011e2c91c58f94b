"""Admitting a parsed request, and presenting it to the router: two pure phases.

`admit` applies the RFC 9112 rules llhttp leaves to the application (exactly one Host on
HTTP/1.1, supported versions and Expect values, no CONNECT, no Transfer-Encoding on HTTP/1.0),
rewrites an absolute-form target to origin form, which servers must accept (RFC 9112 §3.2.2)
but many backends do not, and normalises the path (router.paths) so that routing and the backend read the same one.
`request_meta` is the adapter from the parsed head to the router's `RequestMeta`.
"""

from __future__ import annotations

from proxy.failures import (
    BadRequest,
    ExpectationFailed,
    NotImplementedMethod,
    ProxyError,
    VersionNotSupported,
)
from proxy.headers import RequestHead
from router import RequestMeta, Snapshot, normalise_host
from router.paths import InvalidPath, normalise_target


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
    if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
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
    path = "/"
    if snapshot.reads_path:
        target = head.target
        query = target.find(b"?")
        path = (target if query == -1 else target[:query]).decode("latin-1")
    cookie = None
    if snapshot.reads_cookie and head.cookie is not None:
        cookie = head.cookie.decode("latin-1")
    return RequestMeta(host, path, head.rule_values, cookie)


def route_host(raw: bytes | None) -> str:
    """The Host header as routes match it (see router.normalise_host)."""
    return normalise_host(raw.decode("latin-1")) if raw else ""
