"""The dashboard's page and its assets, served from the package (admin_api/ui/) to anyone.

The page is public (no token) because it holds no data: everything it shows comes from the
API, which asks for the token (the page asks the person once and sends it as a bearer token).
Every answer here, a 404 included, carries a strict Content-Security-Policy (only this origin's
scripts, styles and connections; no inline script or style, no frames, no forms, no <base>)
and the headers that keep the page out of frames, content sniffing and referrers, and
`Cache-Control: no-cache` so an upgraded turnout is never shown with an old page.

Only a regular file directly in admin_api/ui/ with a known extension is served: the name is
resolved and must stay inside that directory, so `..`, an encoded slash or a symlink out of it
is a 404 like any unknown name. These routes are not part of the API: the OpenAPI document
leaves them out.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from admin_api.problems import Problem

UI = Path(__file__).resolve().parent / "ui"

SECURITY = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

TYPES = {
    ".html": "text/html; charset=utf-8",
    # RFC 9239: text/javascript; a module script must come with a JavaScript type.
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}

PAGE = "index.html"

ROUTES = (("GET", "/"), ("GET", "/ui/"), ("GET", "/ui/{file}"))
"""(method, route template) of every route here: all public."""


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", "/", page)
    app.router.add_route("GET", "/ui/", page)
    app.router.add_route("GET", "/ui/{file}", asset)


async def page(request: web.Request) -> web.Response:
    return _serve(PAGE)


async def asset(request: web.Request) -> web.Response:
    return _serve(request.match_info["file"])


def _serve(name: str) -> web.Response:
    path = _find(name)
    if path is None:
        raise Problem(
            404, "not-found", "Not found", "no such file of the dashboard", headers=SECURITY
        )
    # Read per request (they are a few kilobytes): what is on disk is what is served.
    return web.Response(
        body=path.read_bytes(), headers={**SECURITY, "Content-Type": TYPES[path.suffix]}
    )


def _find(name: str) -> Path | None:
    try:
        path = (UI / name).resolve()
    except (OSError, ValueError):  # a NUL byte, a loop of symlinks
        return None
    if path.parent != UI or path.suffix not in TYPES or not path.is_file():
        return None
    return path
