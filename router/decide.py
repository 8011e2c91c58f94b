"""decide(): request meta + snapshot + a random roll -> Decision. Pure and deterministic.

The random number is an argument (as Envoy passes its random value into the router), so every
path through here is reproducible in a test with a fixed roll. Order of precedence:

1. the first route, in declared order, whose host and path prefix match;
2. the route's header rules, in order (testers' `x-canary: always`);
3. blue-green: the active colour; weighted: the bucket of the sticky cookie if the route is
   sticky and the cookie is present, else a newly issued cookie's bucket (if the route issues
   cookies), else the roll's bucket;
4. if the chosen pool has no eligible backend: router.failover says where its users go; if
   nowhere, the decision keeps the empty pool (the data plane answers 503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from router.decision import Decision, RequestMeta
from router.failover import fail_over
from router.snapshot import NO_COOKIE, Pool, Route, Snapshot

_BUCKETS: Final = 10_000
"""router.spec.BUCKETS as a compiled constant (see router.hashing._BUCKETS)."""

_ID_MASK: Final = 0xFFFF_FFFF_FFFF_FFFF

_HEX: Final = bytes.hex
"""Called directly, not looked up in `bytes` per id (see router.hashing._COPY)."""

NO_ROUTE: Final = Decision(route=None, pool=None, rule="no-route")


def decide(meta: RequestMeta, snapshot: Snapshot, roll: int) -> Decision:
    """Route one request. `roll` is a uniformly random non-negative integer (64 bits is ample)."""
    route = snapshot.match(meta.host, meta.path)
    if route is None:
        return NO_ROUTE
    decision = _choose(meta, route, roll)
    pool = decision.pool
    if pool is None or pool.eligible:
        return decision  # the common case, in one test
    other = fail_over(decision, pool.name, roll)
    return other if other is not None else decision


def _choose(meta: RequestMeta, route: Route, roll: int) -> Decision:
    """Steps 2 and 3: header rules, then the route's split."""
    headers = meta.headers
    for rule in route.rules:
        if rule.matches(_header(headers, rule.header)):
            return Decision(route, rule.pool, "header", rule.name)
    if route.active is not None:
        return Decision(route, route.active, "active")
    sticky = route.sticky
    if sticky is not None:
        bucket = sticky.header_bucket(meta.cookie)
        if bucket != NO_COOKIE:
            return Decision(route, _split(route, bucket), "cookie", None, bucket)
        if sticky.issue:
            issued = new_cookie_value(roll)
            bucket = sticky.issued_bucket(issued)
            return Decision(route, _split(route, bucket), "cookie", None, bucket, issued)
    bucket = roll % _BUCKETS
    return Decision(route, _split(route, bucket), "weighted", None, bucket)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    if isinstance(headers, dict):
        # The data plane passes a dict: typed so, `get` is a direct C call, where on a Mapping
        # it is a method looked up per request (~190 instructions more, callgrind).
        return headers.get(name)
    return headers.get(name)


def new_cookie_value(roll: int) -> str:
    """A fresh sticky id: 16 hex digits taken from the roll (so it is random in production and
    fixed in tests). The same digits as `f"{roll & mask:016x}"`, for a fraction of the
    instructions (format specs go through the generic formatter, callgrind)."""
    try:
        # A roll of 64 bits (the data plane's) needs no mask; masking a 64-bit int is an
        # arbitrary-precision operation (compiled ints hold 63 bits), so only wider or negative
        # rolls (tests), which to_bytes refuses, pay for it.
        raw = roll.to_bytes(8, "big")
    except OverflowError:
        raw = (roll & _ID_MASK).to_bytes(8, "big")
    return _HEX(raw)


def _split(route: Route, bucket: int) -> Pool:
    # bisect_right as a loop: compiled, a few integer comparisons cost less than the call.
    index = 0
    for bound in route.split_bounds:
        if bucket < bound:
            break
        index += 1
    return route.split_pools[index]
