"""decide(): request meta + snapshot + a random roll -> Decision. Pure and deterministic.

The random number is an argument (as Envoy passes its random value into the router), so every
path through here is reproducible in a test with a fixed roll. Order of precedence:

1. the first route, in declared order, whose host and path prefix match;
2. the route's header rules, in order (testers' `x-canary: always`);
3. blue-green: the active colour; weighted: the bucket of the sticky cookie if the route is
   sticky and the cookie is present, else a newly issued cookie's bucket (if the route issues
   cookies), else the roll's bucket;
4. if the chosen pool has no eligible backend: with failover `auto`, a weighted route spreads
   its users over the route's other live pools in proportion to their weights, a blue-green
   route goes to the other colour; otherwise (or if nothing is live) the route's fallback pool,
   if it has an eligible backend; otherwise the decision keeps the empty pool (the data plane
   answers 503).
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from router.cookies import cookie_value
from router.decision import Decision, RequestMeta
from router.hashing import bucket_of
from router.snapshot import Pool, Route, Snapshot
from router.spec import BUCKETS
from router.split import layout

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
    return _fail_over(decision, route, pool, roll)


def fail_over_from(decision: Decision, failed: str, roll: int) -> Decision | None:
    """Where to retry a request whose pool turned out unreachable (every backend tried failed
    to connect) before the health checker noticed: the route's other live pools by weight, or
    the other colour, or the fallback pool. None when there is nowhere else to go.

    Computed on the spot, not precompiled: it runs only on this error path.
    """
    route = decision.route
    if route is None:
        return None
    if route.mode == "weighted" and route.failover == "auto":
        alive = [
            (pool.name, weight)
            for pool, weight in _split_weights(route)
            if pool.name != failed and pool.eligible and weight > 0
        ]
        if alive:
            order, bounds = layout(alive)
            bucket = decision.bucket if decision.bucket is not None else roll % BUCKETS
            name = order[bisect_right(bounds, bucket * 7919 % BUCKETS)]
            target = next(pool for pool in route.split_pools if pool.name == name)
            return decision.fallen_back(target, failed)
    colour = route.failover_colour  # None unless blue-green with failover auto
    if colour is not None and colour.name != failed and colour.eligible:
        return decision.fallen_back(colour, failed)
    fallback = route.fallback
    if fallback is not None and fallback.name != failed and fallback.eligible:
        return decision.fallen_back(fallback, failed)
    return None


def _split_weights(route: Route) -> list[tuple[Pool, int]]:
    """A weighted route's pools with their weights (recovered from the bucket bounds)."""
    lower = 0
    weights = []
    for pool, upper in zip(route.split_pools, route.split_bounds, strict=True):
        weights.append((pool, upper - lower))
        lower = upper
    return weights


def _fail_over(decision: Decision, route: Route, pool: Pool, roll: int) -> Decision:
    """Step 4: the chosen pool has no eligible backend."""
    if route.failover_bounds:
        # The pool's users spread over the live pools in proportion to their weights. The bucket
        # is scrambled first (x -> x * 7919 mod 10000 is a bijection: 7919 is prime to 10000):
        # a failed pool's users hold one contiguous bucket range, which unscrambled would all
        # land in one pool. Each user still always lands in the same place.
        bucket = decision.bucket if decision.bucket is not None else roll % BUCKETS
        scrambled = bucket * 7919 % BUCKETS
        target = route.failover_pools[bisect_right(route.failover_bounds, scrambled)]
        return decision.fallen_back(target, pool.name)
    colour = route.failover_colour
    if colour is not None and colour.eligible:
        return decision.fallen_back(colour, pool.name)
    fallback = route.fallback
    if fallback is not None and fallback.eligible:
        return decision.fallen_back(fallback, pool.name)
    return decision


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
    # bisect_right as a loop: compiled, a few integer comparisons cost less than the call.
    index = 0
    for bound in route.split_bounds:
        if bucket < bound:
            break
        index += 1
    return route.split_pools[index]
