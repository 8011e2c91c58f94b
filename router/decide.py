"""decide(): request meta + snapshot + a random roll -> Decision. Pure and deterministic.

The random number is an argument (as Envoy passes its random value into the router), so every
path through here is reproducible in a test with a fixed roll. Order of precedence:

1. the first route, in declared order, whose host and path prefix match;
2. the route's header rules, in order (testers' `x-canary: always`);
3. blue-green: the active colour; weighted: the bucket of the sticky cookie if the route is
   sticky and the cookie is present, else a newly issued cookie's bucket (if the route issues
   cookies), else the roll's bucket;
4. if the chosen pool has no eligible backend and the route names a fallback pool that has one,
   the fallback pool.
"""

from __future__ import annotations

from bisect import bisect_right

from router.cookies import cookie_value
from router.decision import Decision, RequestMeta
from router.hashing import bucket_of
from router.snapshot import Pool, Route, Snapshot
from router.spec import BUCKETS

NO_ROUTE = Decision(route=None, pool=None, rule="no-route")


def decide(meta: RequestMeta, snapshot: Snapshot, roll: int) -> Decision:
    """Route one request. `roll` is a uniformly random non-negative integer (64 bits is ample)."""
    route = snapshot.match(meta.host, meta.path)
    if route is None:
        return NO_ROUTE
    decision = _choose(meta, route, roll)
    pool = decision.pool
    if pool is None or pool.eligible:
        return decision  # the common case, in one test
    fallback = route.fallback
    if fallback is None or not fallback.eligible:
        return decision
    return decision._replace(pool=fallback, fallback_from=pool.name)


def _choose(meta: RequestMeta, route: Route, roll: int) -> Decision:
    """Steps 2 and 3: header rules, then the route's split."""
    for rule in route.rules:
        if rule.matches(meta.headers.get(rule.header)):
            return Decision(route, rule.pool, "header", rule.name)
    if route.active is not None:
        return Decision(route, route.active, "active")
    sticky = route.sticky
    if sticky is not None:
        value = cookie_value(meta.cookie, sticky.cookie)
        if value is not None:
            bucket = bucket_of(value, sticky.salt)
            return Decision(route, _split(route, bucket), "cookie", None, bucket)
        if sticky.issue:
            issued = new_cookie_value(roll)
            bucket = bucket_of(issued, sticky.salt)
            return Decision(route, _split(route, bucket), "cookie", None, bucket, issued)
    bucket = roll % BUCKETS
    return Decision(route, _split(route, bucket), "weighted", None, bucket)


def new_cookie_value(roll: int) -> str:
    """A fresh sticky id: 16 hex digits taken from the roll (so it is random in production and
    fixed in tests)."""
    return f"{roll & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def _split(route: Route, bucket: int) -> Pool:
    return route.split_pools[bisect_right(route.split_bounds, bucket)]
