"""What the operator declares: pools of backends, routes and their splits.

A spec is plain data, frozen, and not yet checked; `router.build.build_snapshot` validates it
and compiles it into a `Snapshot` that request-time code reads. Writers never change a spec in
place: `router.edits` derives a new one and builds a new snapshot from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AdminState = Literal["ready", "drain", "maint"]
"""HAProxy's vocabulary: `drain` takes no new requests but lets in-flight ones finish;
`maint` takes nothing. Independent of health."""

Health = Literal["healthy", "unhealthy"]

Mode = Literal["weighted", "blue-green"]

MatchKind = Literal["exact", "regex", "present"]

Failover = Literal["auto", "none"]
"""When the pool a request is routed to has no eligible backend. `auto`: a weighted route
spreads that pool's share over its other pools in proportion to their weights; a blue-green
route goes to the other colour (the previous one, when set). `none`: no failover (then the
route's fallback_pool if it has one, else 503)."""

SameSite = Literal["Strict", "Lax", "None"]

BUCKETS = 10_000
"""Sticky and weighted splits work on buckets 0..9999: 0.01 % resolution."""


@dataclass(frozen=True, slots=True)
class BackendSpec:
    name: str
    host: str
    port: int
    weight: int = 1
    admin_state: AdminState = "ready"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PoolSpec:
    name: str
    backends: tuple[BackendSpec, ...]
    panic_threshold: int = 0
    """Percent. When fewer of the pool's ready backends than this are healthy, route to all its
    ready backends regardless of health (Envoy's panic mode). 0: never, the default."""
    slow_start: float = 0.0
    """Seconds over which a readmitted backend's weight ramps from 10 % to 100 %. 0: off."""


@dataclass(frozen=True, slots=True)
class HeaderRuleSpec:
    """Send requests whose `header` matches to `pool`, before any split is consulted."""

    name: str
    header: str
    match: MatchKind
    value: str | None
    pool: str


@dataclass(frozen=True, slots=True)
class StickySpec:
    """Hash the value of `cookie` into a bucket, so a user keeps the same pool.

    When the cookie is absent and `issue` is set, the proxy makes up a random value, routes by
    it, and sets the cookie on the response so the next request sticks.
    """

    cookie: str = "turnout-id"
    issue: bool = True
    max_age: int = 30 * 24 * 3600
    path: str = "/"
    secure: bool = False
    http_only: bool = True
    same_site: SameSite = "Lax"
    salt: str = ""


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """A route matches requests by host and path prefix and sends them to pools.

    `weights` (weighted mode) is ordered: the first pool is the baseline, which holds the
    middle of the bucket range; see `router.split` for why the order matters to stickiness.
    `colours` (blue-green mode) are the pools taking part; `active` gets all traffic and
    `previous` is where `rollback` returns to.
    """

    name: str
    hosts: tuple[str, ...] = ()
    path_prefix: str = "/"
    mode: Mode = "weighted"
    weights: tuple[tuple[str, int], ...] = ()
    previous_weights: tuple[tuple[str, int], ...] | None = None
    colours: tuple[str, ...] = ()
    active: str | None = None
    previous: str | None = None
    rules: tuple[HeaderRuleSpec, ...] = ()
    sticky: StickySpec | None = None
    fallback_pool: str | None = None
    failover: Failover = "auto"


@dataclass(frozen=True, slots=True)
class Spec:
    pools: tuple[PoolSpec, ...]
    routes: tuple[RouteSpec, ...]

    def pool(self, name: str) -> PoolSpec | None:
        for pool in self.pools:
            if pool.name == name:
                return pool
        return None

    def route(self, name: str) -> RouteSpec | None:
        for route in self.routes:
            if route.name == name:
                return route
        return None
