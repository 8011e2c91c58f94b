"""etcd's users, as the JSON gateway speaks them: one user's token, fetched and replaced.

Theory of operation: with auth enabled, etcd answers a call only with a token in its
`Authorization` header; POST /v3/auth/authenticate {"name", "password"} gives one. `TokenAuth`
keeps the current token, fetches it when there is none (one fetch at a time, however many calls
wait for it), and forgets it when etcd refuses it: expired (the simple token's TTL), or made
stale by a change of the auth store. Only those refusals (`STALE_TOKEN`) are worth a new token;
a wrong password or a missing permission is not. The caller (proxy.fleet.etcd) sends the call,
asks `refused` whether a refusal was the token's, and then asks once again: etcd refused the
call before doing anything, so asking again is safe even for a write.

The password lives only here and is never part of a repr.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

# What etcd says of a token it does not accept (etcdserver/api/v3rpc/rpctypes). "user name is
# empty" is what it says when a call comes without a token (or with one it no longer knows).
STALE_TOKEN = (
    "invalid auth token",
    "user name is empty",
    "auth token expired",
    "revision of auth store is old",
)

Authenticate = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
"""Sends {"name", "password"} to /v3/auth/authenticate; etcd's answer ({"token": ...})."""


class TokenAuth:
    """One etcd user's credentials and current token."""

    def __init__(self, username: str, password: str) -> None:
        if not username or not password:
            raise ValueError("give both username and password")
        self.username = username
        self._password = password
        self._token: str | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TokenAuth(username={self.username!r})"

    async def headers(self, authenticate: Authenticate) -> dict[str, str]:
        """The header of the next call; authenticates first when there is no token."""
        if self._token is None:
            async with self._lock:
                if self._token is None:
                    answer = await authenticate({"name": self.username, "password": self._password})
                    self._token = str(answer.get("token", ""))
        return {"Authorization": self._token}

    def refused(self, message: str, headers: dict[str, str]) -> bool:
        """Whether etcd's refusal `message` was of the token sent in `headers`; forgets that
        token if so (only that one: another call may have replaced it already)."""
        if not any(stale in message for stale in STALE_TOKEN):
            return False
        if self._token == headers.get("Authorization"):
            self._token = None
        return True
