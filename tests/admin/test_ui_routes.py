"""The dashboard's page and files on the admin listener: served from the package to anyone (the
data behind them needs the token), each with the exact security headers and the right type,
and nothing else: unknown names, directories and every way out of admin_api/ui/ are 404."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from admin_support import Reply, api, backend_loop, shop_and_web

from admin_api import ui_routes
from helpers import ProxyProcess, proxy_process

TOKEN = "dashboard-tests-0123456789abcdef"

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ProxyProcess]:
    with backend_loop() as loop:
        data = shop_and_web(loop)
        data["admin"] = {"tokens": [{"name": "ci", "token": TOKEN}]}
        with proxy_process(data) as running:
            yield running


def raw_get(proxy: ProxyProcess, target: str) -> Reply:
    """GET with the target sent exactly as given (no client-side normalisation of `..`)."""
    client = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=10)
    try:
        client.putrequest("GET", target, skip_accept_encoding=True)
        client.endheaders()
        response = client.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        client.close()


def secured(reply: Reply) -> None:
    for name, value in HEADERS.items():
        assert reply.headers.get_all(name) == [value], (name, reply.headers)


@pytest.mark.parametrize("path", ["/", "/ui/"])
def test_the_page_is_served_without_a_token_while_the_api_needs_one(
    proxy: ProxyProcess, path: str
) -> None:
    anonymous = api(proxy)
    reply = anonymous.call("GET", path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    secured(reply)
    assert reply.raw == (ui_routes.UI / "index.html").read_bytes()
    assert b"<title>turnout</title>" in reply.raw
    assert b'<script type="module" src="/ui/app.js"></script>' in reply.raw
    anonymous.call("GET", "/v1/routes").problem(401, "unauthorized")
    # A wrong token is no reason to refuse the page either.
    assert api(proxy, "wrong-token-0123456789").call("GET", path).status == 200


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
    ],
)
def test_each_file_with_its_type_and_the_headers(
    proxy: ProxyProcess, name: str, content_type: str
) -> None:
    reply = api(proxy).call("GET", f"/ui/{name}")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    secured(reply)
    assert reply.raw == (ui_routes.UI / name).read_bytes()


def test_every_type_served_is_a_browser_type() -> None:
    # A module script needs a JavaScript MIME type (HTML's "module script" rules), and
    # nosniff makes the browser hold every file to its declared type.
    assert ui_routes.TYPES[".js"] == ui_routes.TYPES[".mjs"] == "text/javascript; charset=utf-8"
    assert ui_routes.TYPES[".svg"] == "image/svg+xml"
    assert ui_routes.TYPES[".png"] == "image/png"


@pytest.mark.parametrize(
    "target",
    [
        "/ui/missing.js",
        "/ui/app.JS",  # the extension as listed, exactly
        "/ui/README",  # no extension served
        "/ui/..",
        "/ui/%2e%2e",
        "/ui/..%2fui_routes.py",
        "/ui/%2e%2e%2fui_routes.py",
        "/ui/%2E%2E%2F%2E%2E%2Fpyproject.toml",
        "/ui/..%2f..%2fREADME.md",
        "/ui/%2fetc%2fpasswd",
        "/ui/..%5cui_routes.py",
        "/ui/index.html%00.js",
    ],
)
def test_unknown_files_and_any_way_out_are_404(proxy: ProxyProcess, target: str) -> None:
    reply = raw_get(proxy, target)
    assert reply.status == 404, (target, reply.raw[:200])
    reply.problem(404, "not-found")
    secured(reply)


@pytest.mark.parametrize(
    "target", ["/ui/../admin_api/ui_routes.py", "/ui/../../pyproject.toml", "/ui/./../README.md"]
)
def test_dot_segments_leave_the_dashboard_and_reach_nothing(
    proxy: ProxyProcess, target: str
) -> None:
    # The server removes dot segments first (RFC 3986 §5.2.4): what is left is no file of
    # the dashboard, only a path without a route, refused as any other (401 without a token).
    reply = raw_get(proxy, target)
    assert reply.status == 401, (target, reply.raw[:200])
    assert b"def " not in reply.raw
    assert b"[project]" not in reply.raw


def test_only_get(proxy: ProxyProcess) -> None:
    reply = api(proxy, TOKEN).call("POST", "/ui/app.js", {"x": 1})
    assert reply.status == 405
