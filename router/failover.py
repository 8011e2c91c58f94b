"""Failover: where a route's requests go when their pool cannot serve them. Pure.

Theory of operation. A pool cannot serve a request in two ways: the snapshot says it has no
eligible backend (decide() sees it), or every backend tried failed to connect before the health
checker noticed (the data plane sees it). Both go through `fail_over`, so a user lands in the
same place whichever way the failure was found:

1. weighted route, failover `auto`: the route's other live pools (eligible, weight > 0), in
   proportion to their weights. The plan is laid out from the spec's weights once, when the
   snapshot is built (`failover_fields`); only a pool that is eligible but unreachable needs a
   plan without itself, computed on that error path from the same list;
2. blue-green route, failover `auto`: the other colour (the previous one, or the only other);
3. otherwise, or if nothing above is live: the route's fallback pool, if it is live.

A failed pool's users hold one contiguous bucket range; the bucket is scrambled first
(x -> x * 7919 mod 10000 is a bijection: 7919 is prime to 10000) so that they spread over the
live pools instead of all landing in one. Each user still always lands in the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from router.spec import BUCKETS
from router.split import layout

if TYPE_CHECKING:
    from router.decision import Decision
    from router.snapshot import Pool, Route
    from router.spec import RouteSpec

SCRAMBLE: Final = 7919


def failover_fields(spec: RouteSpec, pools: Mapping[str, Pool]) -> dict[str, Any]:
    """The Route fields that say where its requests go when their pool cannot serve them."""
    if spec.failover == "none":
        return {}
    if spec.mode == "weighted":
        alive = tuple(
            (pools[name], weight)
            for name, weight in spec.weights
            if weight > 0 and pools[name].eligible
        )
        if not alive:
            return {}
        spread, bounds = _spread(alive)
        return {"failover_weights": alive, "failover_pools": spread, "failover_bounds": bounds}
    others = [colour for colour in spec.colours if colour != spec.active]
    colour = spec.previous or (others[0] if len(others) == 1 else None)
    return {"failover_colour": pools[colour]} if colour is not None else {}


def fail_over(decision: Decision, failed: str, roll: int) -> Decision | None:
    """`decision` sent elsewhere because pool `failed` cannot serve it, or None when there is
    nowhere else to go. `roll` places a request that has no sticky bucket."""
    route = decision.route
    if route is None:
        return None
    spread, bounds = route.failover_pools, route.failover_bounds
    if bounds and _in(route, failed):
        # Eligible but unreachable: the plan built with it is no good; lay one out without it.
        spread, bounds = _spread(
            tuple((pool, weight) for pool, weight in route.failover_weights if pool.name != failed)
        )
    if bounds:
        bucket = decision.bucket if decision.bucket is not None else roll % BUCKETS
        scrambled = bucket * SCRAMBLE % BUCKETS
        index = 0
        for bound in bounds:
            if scrambled < bound:
                break
            index += 1
        return decision.fallen_back(spread[index], failed)
    colour = route.failover_colour  # None unless blue-green with failover auto
    if colour is not None and colour.name != failed and colour.eligible:
        return decision.fallen_back(colour, failed)
    fallback = route.fallback
    if fallback is not None and fallback.name != failed and fallback.eligible:
        return decision.fallen_back(fallback, failed)
    return None


def _in(route: Route, name: str) -> bool:
    return any(pool.name == name for pool in route.failover_pools)


def _spread(alive: tuple[tuple[Pool, int], ...]) -> tuple[tuple[Pool, ...], tuple[int, ...]]:
    """The pools in bucket order and their bounds (see router.split.layout)."""
    if not alive:
        return (), ()
    by_name = {pool.name: pool for pool, _ in alive}
    order, bounds = layout([(pool.name, weight) for pool, weight in alive])
    return tuple(by_name[name] for name in order), bounds
