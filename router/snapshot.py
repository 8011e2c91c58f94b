"""The routing snapshot: one immutable, validated, compiled view of everything a request reads.

Theory of operation. A `Snapshot` is built once per change by `router.build.build_snapshot`
(which validates) and then only read. Everything a decision needs is precomputed here:
eligible backends per pool and their cumulative weights, bucket bounds per split, compiled
header regexes, the Set-Cookie attributes. Request-time code never validates and never
rebuilds a table; it captures one snapshot at the start of a request and reads only it, so a
concurrent swap (weights, switch, health) can never show a request half of each.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from types import MappingProxyType
from typing import Final

from router.cookies import cookie_value
from router.hashing import bucket_from, bucket_from_bytes, bucket_of
from router.spec import AdminState, Failover, Health, MatchKind, Mode, Spec

MEMO_ENTRIES: Final = 4096
"""Sticky buckets a route remembers before it forgets them all (bounded: clients choose them)."""

MEMO_VALUE_LIMIT: Final = 64
"""Longer cookie values are hashed every time: only ids of a sane length are remembered."""

MEMO_HEADER_LIMIT: Final = 256
"""Longer Cookie headers are parsed every time (their sticky value may still be remembered)."""

NO_COOKIE: Final = -1
"""`Sticky.header_bucket` of a Cookie header without the route's cookie (or with it empty)."""


@dataclass(frozen=True, slots=True)
class Backend:
    pool: str
    name: str
    host: str
    port: int
    weight: int
    admin_state: AdminState
    health: Health

    @property
    def eligible(self) -> bool:
        """Pingora's rule: ready means enabled by the operator *and* healthy."""
        return self.admin_state == "ready" and self.health == "healthy" and self.weight > 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.pool, self.name)


@dataclass(frozen=True, slots=True, repr=False)
class Pool:
    name: str
    backends: tuple[Backend, ...]
    eligible: tuple[Backend, ...]
    """Backends that take new requests: ready, healthy, weight > 0 (or, in panic, ready)."""
    cumulative: tuple[int, ...]
    """Running totals of the eligible backends' weights, for weighted random choice."""
    weights: tuple[int, ...] = ()
    """The eligible backends' weights, in the same order."""
    panic: bool = False
    """Too few healthy backends (below panic_threshold): `eligible` ignores health."""
    slow_start: float = 0.0
    ramp: tuple[tuple[int, float], ...] = ()
    """(index into `eligible`, wall time it was readmitted) for backends still ramping up."""
    ramp_until: float = 0.0
    """Wall time after which no backend of the pool is ramping any more."""

    def __repr__(self) -> str:
        return f"Pool({self.name!r}, eligible={[b.name for b in self.eligible]})"


@dataclass(frozen=True, slots=True)
class HeaderRule:
    name: str
    header: str
    """Lower-case header name."""
    match: MatchKind
    value: str | None
    pool: Pool
    pattern: re.Pattern[str] | None

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.match == "present":
            return True
        if self.pattern is not None:
            # A full match, as Envoy's safe_regex: a pattern never matches by accident of a
            # substring ("beta" does not match "not-beta").
            return self.pattern.fullmatch(value) is not None
        return value == self.value


@dataclass(frozen=True, slots=True)
class Sticky:
    """What a request reads of a route's sticky settings (router.spec.StickySpec has all of
    them). A class of this compiled module, so reading it is a native attribute access."""

    cookie: str
    salt: str
    issue: bool
    set_cookie_prefix: bytes = b""
    """`name=` of an issued cookie's Set-Cookie value, encoded once per build."""
    set_cookie_suffix: bytes = b""
    """Its attributes (`; Max-Age=...`), encoded once per build."""
    salted: blake2b | None = field(default=None, compare=False, repr=False)
    """router.hashing.salted(salt), made once per build."""
    memo: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Cookie value -> bucket: a user sends the same id on every request, and a BLAKE2b hash
    costs ~2,500 instructions where a lookup costs ~150. Only a cache of the pure
    `bucket_of(value, salt)` (the salt is this object's, so a new salt starts afresh): every
    answer is the hash's, so stickiness cannot change. Per worker, bounded by MEMO_ENTRIES."""
    header_memo: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Whole Cookie header -> its bucket, or NO_COOKIE: a client sends the same header on every
    request, and one lookup costs a tenth of finding the cookie in it (callgrind). A cache of
    the pure `bucket(cookie_value(header, cookie))` like `memo`, bounded by MEMO_ENTRIES
    headers of at most MEMO_HEADER_LIMIT characters."""

    def bucket(self, value: str) -> int:
        """`bucket_of(value, self.salt)`, remembered."""
        memo = self.memo
        bucket = memo.get(value)
        if bucket is None:
            state = self.salted
            bucket = bucket_of(value, self.salt) if state is None else bucket_from(state, value)
            if len(value) <= MEMO_VALUE_LIMIT:
                if len(memo) >= MEMO_ENTRIES:
                    memo.clear()
                memo[value] = bucket
        return bucket

    def header_bucket(self, header: str | None) -> int:
        """The bucket of this route's cookie in a Cookie header, or NO_COOKIE when the header
        has none (router.cookies.cookie_value is None), remembered."""
        if header is None:
            return NO_COOKIE
        headers = self.header_memo
        bucket = headers.get(header)
        if bucket is None:
            value = cookie_value(header, self.cookie)
            bucket = NO_COOKIE if value is None else self.bucket(value)
            if len(header) <= MEMO_HEADER_LIMIT:
                if len(headers) >= MEMO_ENTRIES:
                    headers.clear()
                headers[header] = bucket
        return bucket

    def issued_bucket(self, value: str) -> int:
        """`bucket(value)` for an id made up just now (ASCII, 16 hex digits): it cannot be in
        the memo yet (looking costs a miss), but is remembered for the user's next request."""
        state = self.salted
        if state is None:
            return self.bucket(value)
        # ASCII: strict UTF-8 is the surrogateescape encoding router.hashing uses, and cannot fail.
        bucket = bucket_from_bytes(state, value.encode())
        memo = self.memo
        if len(memo) >= MEMO_ENTRIES:
            memo.clear()
        memo[value] = bucket
        return bucket


@dataclass(frozen=True, slots=True, repr=False)
class Route:
    name: str
    mode: Mode
    any_host: bool
    exact_hosts: frozenset[str]
    wildcard_suffixes: tuple[str, ...]
    """".example.com" for "*.example.com": matches one or more labels in front."""
    path_prefix: str
    """Without a trailing slash, except the root "/"."""
    rules: tuple[HeaderRule, ...]
    split_pools: tuple[Pool, ...]
    """Weighted mode: pools in bucket order (see router.split)."""
    split_bounds: tuple[int, ...]
    active: Pool | None
    """Blue-green mode: the pool that takes all traffic."""
    sticky: Sticky | None
    cookie_attributes: str
    """The `; Max-Age=...; Path=/; HttpOnly; SameSite=Lax` tail of an issued cookie."""
    fallback: Pool | None
    failover: Failover = "auto"
    failover_weights: tuple[tuple[Pool, int], ...] = ()
    """Weighted, failover auto: the split's live pools (eligible, weight > 0) with their
    weights, in the spec's order (see router.failover)."""
    failover_pools: tuple[Pool, ...] = ()
    """The same pools in bucket order: where the users of a pool without backends go."""
    failover_bounds: tuple[int, ...] = ()
    failover_colour: Pool | None = None
    """Blue-green, failover auto: where requests go when the active colour has no backend."""

    def __repr__(self) -> str:
        return f"Route({self.name!r})"

    def matches(self, host: str, path: str) -> bool:
        """Host (exact or wildcard) and path prefix on element boundaries (Gateway API)."""
        if not self.any_host and host not in self.exact_hosts:
            for suffix in self.wildcard_suffixes:
                # "*." needs at least one label in front: ".example.com" is not a match.
                if host.endswith(suffix) and len(host) > len(suffix):
                    break
            else:
                return False
        prefix = self.path_prefix
        return (
            prefix == "/"
            or path == prefix
            or (path.startswith(prefix) and path[len(prefix) : len(prefix) + 1] == "/")
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    spec: Spec
    health: Mapping[tuple[str, str], Health]
    """(pool, backend) -> health; a backend absent from it counts as healthy."""
    pools: Mapping[str, Pool]
    routes: tuple[Route, ...]
    rule_headers: frozenset[str]
    """Lower-case names of every header some rule reads: the data plane keeps only these."""
    reads_path: bool
    """Some route matches on a path prefix other than "/" (else the path need not be decoded)."""
    reads_cookie: bool
    """Some route is sticky (else the Cookie header need not be decoded)."""
    catch_all: Route | None = None
    """The first route when it matches every request (any host, prefix "/"): then no other
    route can ever be chosen, and matching is one attribute read."""
    readmitted: Mapping[tuple[str, str], float] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """(pool, backend) -> wall time it became healthy again (slow start ramps from there)."""

    def match(self, host: str, path: str) -> Route | None:
        """The first route, in declared order, matching host and path."""
        first = self.catch_all
        if first is not None:
            return first
        for route in self.routes:
            if route.matches(host, path):
                return route
        return None

    def route(self, name: str) -> Route | None:
        for route in self.routes:
            if route.name == name:
                return route
        return None
