"""A small synchronous client for the admin API, as the `turnout` commands use it.

Standard library only (urllib.request, json): the CLI must stay light and must not need the
server's dependencies to talk to a running instance. Every method mirrors one endpoint of
admin_api.app.ENDPOINTS and returns the decoded JSON body. Failures raise AdminError carrying
the RFC 9457 problem document; AdminUnreachable when no answer came at all. The bearer token
is sent only in the Authorization header and is never part of a message, repr or log line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from http.client import HTTPException
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9901"
DEFAULT_TIMEOUT = 30.0
"""Seconds per call. Writes return once every worker acknowledged (process.ack_timeout, 5 s by
default), so this only runs out when the instance is stuck or unreachable."""

USER_AGENT = "turnout-cli"

JSON = dict[str, Any]


class AdminError(Exception):
    """The admin API answered with a problem document (or could not be reached: status 0)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors or []

    @classmethod
    def from_response(cls, status: int, reason: str, raw: bytes) -> AdminError:
        """The problem document of an error answer; something sensible when it is not one
        (a proxy's HTML page, an empty body)."""
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict) or "title" not in document:
            text = raw.decode("utf-8", "replace").strip()[:200]
            return cls(status, reason or f"HTTP {status}", text or None)
        errors = document.get("errors")
        # The HTTP status is authoritative; a problem's own `status` only repeats it.
        return cls(
            status=status,
            title=str(document["title"]),
            detail=document.get("detail"),
            type=str(document.get("type", "about:blank")),
            errors=errors if isinstance(errors, list) else None,
        )


class AdminUnreachable(AdminError):
    """No HTTP answer: connection refused, name not resolved, timed out, connection dropped."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(0, f"cannot reach the admin API at {url}: {reason}", type="unreachable")
        self.url = url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The API never redirects; following one could carry the token to another host.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class AdminClient:
    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"admin URL must be http(s)://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token or None
        # No proxy from the environment: the admin API is local or on an operator network, and
        # a forward proxy in between would see the bearer token of a plain-HTTP call.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    def __repr__(self) -> str:
        return f"AdminClient({self.url!r}, token={'set' if self._token else None})"

    # Routes

    def routes(self) -> JSON:
        return self._call("GET", "/v1/routes")

    def route(self, name: str) -> JSON:
        return self._call("GET", f"/v1/routes/{_seg(name)}")

    def set_weights(
        self,
        route: str,
        weights: Mapping[str, int],
        force: bool = False,
        if_match: int | None = None,
    ) -> JSON:
        return self._call(
            "PUT",
            f"/v1/routes/{_seg(route)}/weights",
            {"weights": dict(weights), "force": force},
            if_match=if_match,
        )

    def switch(self, route: str, to: str, force: bool = False) -> JSON:
        return self._call("POST", f"/v1/routes/{_seg(route)}/switch", {"to": to, "force": force})

    def rollback(self, route: str, force: bool = False) -> JSON:
        return self._call("POST", f"/v1/routes/{_seg(route)}/rollback", {"force": force})

    def promote(self, route: str, pool: str | None = None, force: bool = False) -> JSON:
        body = {"pool": pool, "force": force}
        return self._call("POST", f"/v1/routes/{_seg(route)}/promote", body)

    def abort(self, route: str) -> JSON:
        return self._call("POST", f"/v1/routes/{_seg(route)}/abort")

    def undo(self, route: str, to_revision: int, force: bool = False) -> JSON:
        body = {"toRevision": to_revision, "force": force}
        return self._call("POST", f"/v1/routes/{_seg(route)}/undo", body)

    # Rollouts

    def start_rollout(self, route: str, spec: JSON, if_match: int | None = None) -> JSON:
        """Start a rollout; `spec` names only what differs from the route's defaults."""
        return self._call("POST", f"/v1/routes/{_seg(route)}/rollout", spec, if_match=if_match)

    def rollout(self, route: str) -> JSON:
        return self._call("GET", f"/v1/routes/{_seg(route)}/rollout")

    def rollouts(self) -> JSON:
        return self._call("GET", "/v1/rollouts")

    def rollout_command(self, route: str, verb: str, if_match: int | None = None) -> JSON:
        """`verb`: pause, resume, promote or abort."""
        path = f"/v1/routes/{_seg(route)}/rollout/{_seg(verb)}"
        return self._call("POST", path, if_match=if_match)

    # Pool rollouts

    def start_pool_rollout(self, pool: str, spec: JSON, if_match: int | None = None) -> JSON:
        """Start a pool's rollout; `spec` names only what differs from the pool's defaults."""
        return self._call("POST", f"/v1/pools/{_seg(pool)}/rollout", spec, if_match=if_match)

    def pool_rollout(self, pool: str) -> JSON:
        return self._call("GET", f"/v1/pools/{_seg(pool)}/rollout")

    def pool_rollout_command(self, pool: str, verb: str, if_match: int | None = None) -> JSON:
        """`verb`: pause, resume or abort."""
        path = f"/v1/pools/{_seg(pool)}/rollout/{_seg(verb)}"
        return self._call("POST", path, if_match=if_match)

    # Pools

    def pools(self) -> JSON:
        return self._call("GET", "/v1/pools")

    def pool(self, name: str) -> JSON:
        return self._call("GET", f"/v1/pools/{_seg(name)}")

    def patch_backend(
        self,
        pool: str,
        backend: str,
        admin_state: str | None = None,
        weight: int | None = None,
        wait: float | None = None,
        force: bool = False,
    ) -> JSON:
        """Change a backend; with `wait` (seconds), return once nothing is in flight to it
        (409 drain-timeout when requests are left at the deadline). `force`: even when it is
        the last eligible backend of a pool that takes traffic (else 409)."""
        body: JSON = {}
        if admin_state is not None:
            body["adminState"] = admin_state
        if weight is not None:
            body["weight"] = weight
        if force:
            body["force"] = True
        query = {"wait": f"{wait:g}s"} if wait is not None else None
        # The server holds the answer for up to `wait`: the socket timeout must outlast it.
        timeout = self.timeout + (wait or 0.0)
        path = f"/v1/pools/{_seg(pool)}/backends/{_seg(backend)}"
        return self._call("PATCH", path, body, query=query, timeout=timeout)

    def add_backend(
        self, pool: str, name: str, url: str, weight: int = 1, admin_state: str = "ready"
    ) -> JSON:
        body = {"name": name, "url": url, "weight": weight, "adminState": admin_state}
        return self._call("POST", f"/v1/pools/{_seg(pool)}/backends", body)

    def remove_backend(self, pool: str, backend: str, force: bool = False) -> JSON:
        query = {"force": "true"} if force else None
        path = f"/v1/pools/{_seg(pool)}/backends/{_seg(backend)}"
        return self._call("DELETE", path, query=query)

    # Instance

    def history(self, limit: int | None = None) -> JSON:
        return self._call(
            "GET", "/v1/history", query={"limit": str(limit)} if limit is not None else None
        )

    def workers(self) -> JSON:
        return self._call("GET", "/v1/workers")

    def fleet(self) -> JSON:
        return self._call("GET", "/v1/fleet")

    def reload(self) -> JSON:
        return self._call("POST", "/v1/reload")

    def ready(self) -> JSON:
        """The readiness document; 503 (not ready) is an answer, not an error: see `status`."""
        return self._call("GET", "/ready", ok=(200, 503))

    # Transport

    def _call(
        self,
        method: str,
        path: str,
        body: JSON | None = None,
        *,
        query: Mapping[str, str] | None = None,
        if_match: int | None = None,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200, 201),
    ) -> JSON:
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        status, reason, raw = self._send(request, timeout or self.timeout)
        if status not in ok:
            raise AdminError.from_response(status, reason, raw)
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError as error:
            raise AdminError(
                status, "The admin API answered with malformed JSON", str(error)
            ) from None
        if not isinstance(answer, dict):
            raise AdminError(status, "The admin API answered with unexpected JSON", repr(answer))
        return answer

    def _send(self, request: urllib.request.Request, timeout: float) -> tuple[int, str, bytes]:
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return response.status, response.reason, response.read()
        except urllib.error.HTTPError as error:
            # An answer with an error status: its body is the problem document.
            with error:
                return error.code, str(error.reason), error.read()
        except urllib.error.URLError as error:
            raise AdminUnreachable(self.url, _reason(error.reason)) from None
        except TimeoutError:
            raise AdminUnreachable(self.url, f"no answer within {timeout:g} s") from None
        except (OSError, HTTPException) as error:
            # Connection reset or dropped mid-answer (http.client.RemoteDisconnected, ...).
            raise AdminUnreachable(self.url, _reason(error)) from None


def _seg(name: str) -> str:
    """One path segment: names are validated server-side, but never let one change the path."""
    return urllib.parse.quote(name, safe="")


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
