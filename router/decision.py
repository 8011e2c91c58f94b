"""The input and output of a routing decision: plain values, no I/O types.

Both are built once per request. They are small immutable classes rather than NamedTuples or
frozen dataclasses: compiled (proxy.native), constructing one is a native call, where a
NamedTuple's `__new__` is interpreted Python however the caller was built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from router.snapshot import Pool, Route

RuleKind = Literal["header", "cookie", "weighted", "active", "no-route"]
"""Why a request went where it did, as a closed set fit for a metric label:
`header` a header rule matched; `cookie` a sticky bucket (from the request's cookie, or from
one issued now); `weighted` a random bucket; `active` a blue-green route's active colour;
`no-route` nothing matched."""


class RequestMeta:
    """What routing may look at in a request, already normalised by the caller."""

    __slots__ = ("cookie", "headers", "host", "path")

    def __init__(
        self, host: str, path: str, headers: Mapping[str, str], cookie: str | None = None
    ) -> None:
        self.host: Final = host
        """Lower case, without port or trailing dot."""
        self.path: Final = path
        """The path without the query string."""
        self.headers: Final = headers
        """Lower-case names; only those some rule reads need to be present."""
        self.cookie: Final = cookie
        """The Cookie header, if any."""

    def __repr__(self) -> str:
        return f"RequestMeta({self.host!r}, {self.path!r}, {self.headers!r}, {self.cookie!r})"


class Decision:
    """Where a request goes, and why."""

    __slots__ = (
        "bucket",
        "fallback_from",
        "issued_cookie",
        "pool",
        "route",
        "rule",
        "rule_name",
    )

    def __init__(
        self,
        route: Route | None,
        pool: Pool | None,
        rule: RuleKind,
        rule_name: str | None = None,
        bucket: int | None = None,
        issued_cookie: str | None = None,
        fallback_from: str | None = None,
    ) -> None:
        self.route: Final = route
        self.pool: Final = pool
        self.rule: Final = rule
        self.rule_name: Final = rule_name
        self.bucket: Final = bucket
        self.issued_cookie: Final = issued_cookie
        """The value of a sticky cookie made up for this request; the response must set it."""
        self.fallback_from: Final = fallback_from
        """The pool the split chose, when it had no eligible backend and the fallback was used."""

    def fallen_back(self, pool: Pool, failed: str) -> Decision:
        """The same decision sent to `pool` instead, because `failed` had nowhere to serve it."""
        return Decision(
            self.route, pool, self.rule, self.rule_name, self.bucket, self.issued_cookie, failed
        )

    def fields(self) -> tuple[object, ...]:
        """Every field, in order (what equality compares)."""
        return (
            self.route,
            self.pool,
            self.rule,
            self.rule_name,
            self.bucket,
            self.issued_cookie,
            self.fallback_from,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.fields() == other.fields()

    def __repr__(self) -> str:
        pool = self.pool.name if self.pool is not None else None
        route = self.route.name if self.route is not None else None
        return (
            f"Decision(route={route!r}, pool={pool!r}, rule={self.rule!r}, "
            f"rule_name={self.rule_name!r}, bucket={self.bucket!r}, "
            f"issued_cookie={self.issued_cookie!r}, fallback_from={self.fallback_from!r})"
        )

    def set_cookie_header(self) -> str | None:
        """The Set-Cookie value for an issued sticky cookie, or None."""
        if self.issued_cookie is None or self.route is None or self.route.sticky is None:
            return None
        return f"{self.route.sticky.cookie}={self.issued_cookie}{self.route.cookie_attributes}"

    def set_cookie_bytes(self) -> bytes | None:
        """`set_cookie_header()` as the response head needs it, from parts encoded when the
        snapshot was built."""
        issued = self.issued_cookie
        if issued is None or self.route is None:
            return None
        sticky = self.route.sticky
        if sticky is None:
            return None
        return sticky.set_cookie_prefix + issued.encode("latin-1") + sticky.set_cookie_suffix


def normalise_host(raw: str) -> str:
    """The Host header (or URI authority) as routes match it: lower case, no port, no final dot.

    IPv6 literals keep their brackets ("[::1]:8080" -> "[::1]").
    """
    host = raw.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    colon = host.rfind(":")
    if colon != -1:
        host = host[:colon]
    return host.rstrip(".")
