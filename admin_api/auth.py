"""Bearer tokens for the admin API: who is calling, checked in constant time, and what they may do.

With tokens configured, every endpoint except liveness, readiness, the OpenAPI document and the
dashboard's page needs `Authorization: Bearer <token>`; the token's name becomes the actor
recorded in the history. A token's role is `write` (everything) or `read`: a read token gets 403
on any method but GET, HEAD and OPTIONS, whatever the client (the page, the CLI, a script), so a
dashboard on a wall cannot change traffic. Without tokens the API answers anyone who can reach
it, which is why it then binds only to loopback (proxy.config_sections refuses anything else).
Tokens are never logged or echoed; a refusal names the token's name, never its secret.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from aiohttp import web

from admin_api.problems import Handler, Problem

LOCAL_ACTOR = "local"
"""The actor recorded for changes made without tokens (loopback only)."""

ACTOR = "turnout.actor"

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""What a read token may send: the methods RFC 9110 §9.2.1 calls safe (TRACE is not served)."""


class Tokens:
    def __init__(self, tokens: Sequence[tuple[str, str, str]]) -> None:
        """`tokens`: (name, secret, role) each."""
        self._tokens = [(name, secret.encode(), role) for name, secret, role in tokens]

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def identify(self, authorization: str | None) -> tuple[str, str] | None:
        """The name and role of the token presented, or None when it is missing or wrong."""
        # The scheme is case-insensitive (RFC 9110, 11.1): "bearer" is as good as "Bearer".
        if not authorization or authorization[: len("Bearer ")].lower() != "bearer ":
            return None
        presented = authorization[len("Bearer ") :].strip().encode()
        found = None
        # Every token is compared, whatever matches first, so timing tells nothing about which
        # token (or how much of one) was right.
        for name, secret, role in self._tokens:
            if hmac.compare_digest(presented, secret) and found is None:
                found = (name, role)
        return found


def auth_middleware(tokens: Tokens, public: frozenset[str]) -> web.middleware:  # type: ignore[valid-type]
    """`public`: the route templates (`/ui/{file}`) answered without a token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        if not tokens.required:
            request[ACTOR] = LOCAL_ACTOR
        elif resource is not None and resource.canonical in public:
            request[ACTOR] = "anonymous"
        else:
            token = tokens.identify(request.headers.get("Authorization"))
            if token is None:
                raise Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "send Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="turnout"'},
                )
            name, role = token
            if role != "write" and request.method not in READ_METHODS:
                raise Problem(
                    403,
                    "forbidden",
                    "Forbidden",
                    f"token {name!r} is read-only: {request.method} needs a token with "
                    'role = "write"',
                )
            request[ACTOR] = name
        return await handler(request)

    return middleware
