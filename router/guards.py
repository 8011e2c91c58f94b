"""When a change must be forced: it moves traffic onto a pool with no eligible backend, or
removes a backend that still takes traffic.

Theory of operation. The eligibility rule is one comparison of two snapshots, the current one and the one a
change would make. For every route, each pool in its split (weighted: weight over the total;
blue-green: the active colour's whole share) that has no eligible backend holds a *stranded*
share of the route's traffic. A change needs force exactly when some route's pool holds a
larger stranded share after it than before. So:

- a switch, promotion or weight shift onto a dead pool needs force (0 % -> more);
- draining, putting in maintenance, re-weighting to 0 or removing the last eligible backend of
  a pool that takes traffic needs force (its share becomes stranded);
- moving traffic *off* a dead pool never does (canary 10 -> 5, rollback to a lower weight,
  abort): refusing it would keep users on the dead pool.

Shares are exact fractions, so 1:1 -> 2:2 is no shift at all. Only a route's split or active
colour counts: header rules and fallback pools send traffic only to those who ask for it. The
health checker's changes are facts, not requests, and are never guarded.

A backend is removed only out of service: a `ready` backend takes new requests, so removing it
would cut them off mid-stream for no reason; drain it first (its in-flight requests end), or
force. Like eligibility, this is a rule of the change, not of the caller: every writer gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from router.snapshot import Snapshot
from router.spec import RouteSpec, Spec


@dataclass(frozen=True, slots=True)
class Stranded:
    """A pool with no eligible backend that a change gives a larger share of a route."""

    route: str
    pool: str
    before: Fraction
    after: Fraction


class NoEligibleBackend(Exception):
    """The change would send more of some route's traffic to a pool with no eligible backend."""

    def __init__(self, stranded: tuple[Stranded, ...]) -> None:
        pools = ", ".join(dict.fromkeys(s.pool for s in stranded))
        super().__init__(f"pool(s) {pools} would take more traffic with no eligible backend")
        self.stranded = stranded

    @property
    def pools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.pool for s in self.stranded))


def shares(route: RouteSpec) -> dict[str, Fraction]:
    """Each pool's share of the route's traffic (header rules aside)."""
    if route.mode == "blue-green":
        return {route.active: Fraction(1)} if route.active is not None else {}
    total = sum(weight for _, weight in route.weights)
    if total <= 0:
        return {}
    return {pool: Fraction(weight, total) for pool, weight in route.weights if weight > 0}


def stranded_shares(snapshot: Snapshot, route: RouteSpec) -> dict[str, Fraction]:
    """The shares held by pools that have no eligible backend in `snapshot`."""
    pools = snapshot.pools
    return {
        pool: share
        for pool, share in shares(route).items()
        if pool in pools and not pools[pool].eligible
    }


def newly_stranded(before: Snapshot, after: Snapshot) -> tuple[Stranded, ...]:
    """Every (route, pool) whose stranded share grows from `before` to `after`."""
    found: list[Stranded] = []
    for route in after.spec.routes:
        now = stranded_shares(after, route)
        if not now:
            continue
        old_route = before.spec.route(route.name)
        was = stranded_shares(before, old_route) if old_route is not None else {}
        found += [
            Stranded(route.name, pool, was.get(pool, Fraction(0)), share)
            for pool, share in now.items()
            if share > was.get(pool, Fraction(0))
        ]
    return tuple(found)


def require_eligible(before: Snapshot, after: Snapshot) -> None:
    """Raise NoEligibleBackend when the change from `before` to `after` needs force."""
    stranded = newly_stranded(before, after)
    if stranded:
        raise NoEligibleBackend(stranded)


class BackendInService(Exception):
    """The backend to remove is `ready`: it still takes new requests."""

    def __init__(self, pool: str, backend: str) -> None:
        super().__init__(f"{pool}/{backend} is ready: it still takes traffic")
        self.pool = pool
        self.backend = backend


def require_out_of_service(spec: Spec, pool: str, backend: str) -> None:
    """Raise BackendInService when the backend is `ready` (an unknown one is the edit's to
    refuse)."""
    found = spec.pool(pool)
    state = (
        next((b.admin_state for b in found.backends if b.name == backend), None) if found else None
    )
    if state == "ready":
        raise BackendInService(pool, backend)
