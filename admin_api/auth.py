"""Bearer tokens for the admin API: who is calling, checked in constant time.

With tokens configured, every endpoint except liveness, readiness and the OpenAPI document needs
`Authorization: Bearer <token>`; the token's name becomes the actor recorded in the history.
Without tokens the API answers anyone who can reach it, which is why it then binds only to
loopback (proxy.config_sections refuses anything else). Tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from aiohttp import web

from admin_api.problems import Handler, Problem

LOCAL_ACTOR = "local"
"""The actor recorded for changes made without tokens (loopback only)."""

ACTOR = "turnout.actor"


class Tokens:
    def __init__(self, tokens: Sequence[tuple[str, str]]) -> None:
        self._tokens = [(name, secret.encode()) for name, secret in tokens]

    @property
    def required(self) -> bool:
        return bool(self._tokens)

    def actor(self, authorization: str | None) -> str | None:
        """The name of the token presented, or None when it is missing or wrong."""
        # The scheme is case-insensitive (RFC 9110, 11.1): "bearer" is as good as "Bearer".
        if not authorization or authorization[: len("Bearer ")].lower() != "bearer ":
            return None
        presented = authorization[len("Bearer ") :].strip().encode()
        found = None
        # Every token is compared, whatever matches first, so timing tells nothing about which
        # token (or how much of one) was right.
        for name, secret in self._tokens:
            if hmac.compare_digest(presented, secret) and found is None:
                found = name
        return found


def auth_middleware(tokens: Tokens, public: frozenset[str]) -> web.middleware:  # type: ignore[valid-type]
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not tokens.required:
            request[ACTOR] = LOCAL_ACTOR
        elif request.path in public:
            request[ACTOR] = "anonymous"
        else:
            actor = tokens.actor(request.headers.get("Authorization"))
            if actor is None:
                raise Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "send Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="turnout"'},
                )
            request[ACTOR] = actor
        return await handler(request)

    return middleware
