"""What a new snapshot may take unchanged from the one it replaces: build only what changed.

Theory of operation. A compiled pool depends on its `PoolSpec` and on the health and
readmission times of its own backends, nothing else; a compiled route depends on its
`RouteSpec` and on the compiled pools it names. So when a snapshot is built from an edit of
another (one route's weights, one backend's state, one backend's health), every pool whose spec
and health entries are unchanged is the previous snapshot's `Pool` object, and every route whose
spec is unchanged and whose pools are all those same objects is the previous `Route`. Both were
validated when the previous snapshot was built, and validation of either reads nothing else (a
route's "unknown pool" is re-checked: a route naming a pool that is not reused is compiled
again). The names' uniqueness is checked over the whole spec every time, which is cheap.

Equality is tried by identity first: an edit (`dataclasses.replace`) keeps every untouched spec
object, and a worker rebuilds its spec from the same objects (proxy.spec_delta).
"""

from __future__ import annotations

from collections.abc import Mapping

from router.snapshot import Pool, Route, Snapshot
from router.spec import Health, PoolSpec, RouteSpec


class Reuse:
    """The previous snapshot's compiled pools and routes, and which of them may be kept."""

    __slots__ = ("_dirty", "_pool_specs", "_pools", "_routes")

    def __init__(
        self,
        previous: Snapshot,
        health: Mapping[tuple[str, str], Health],
        readmitted: Mapping[tuple[str, str], float],
    ) -> None:
        self._pools = previous.pools
        self._pool_specs = {pool.name: pool for pool in previous.spec.pools}
        # A valid snapshot compiled one route per spec route, in order.
        self._routes = {
            spec.name: (spec, route)
            for spec, route in zip(previous.spec.routes, previous.routes, strict=True)
        }
        changed = _changed_keys(previous.health, health) | _changed_keys(
            previous.readmitted, readmitted
        )
        self._dirty = frozenset(pool for pool, _ in changed)
        """Pools with a backend whose health or readmission time changed."""

    def pool(self, spec: PoolSpec) -> Pool | None:
        """The previous compiled pool, when nothing it depends on changed."""
        before = self._pool_specs.get(spec.name)
        if before is None or spec.name in self._dirty or not (before is spec or before == spec):
            return None
        return self._pools.get(spec.name)

    def route(self, spec: RouteSpec, pools: Mapping[str, Pool]) -> Route | None:
        """The previous compiled route, when its spec is the same and so are its pools."""
        found = self._routes.get(spec.name)
        if found is None:
            return None
        before, route = found
        if not (before is spec or before == spec):
            return None
        for name in pool_names(spec):
            pool = pools.get(name)
            if pool is None or pool is not self._pools.get(name):
                return None
        return route


def pool_names(spec: RouteSpec) -> set[str]:
    """Every pool a route names, in any role."""
    names = {name for name, _ in spec.weights}
    names.update(name for name, _ in spec.previous_weights or ())
    names.update(spec.colours)
    names.update(rule.pool for rule in spec.rules)
    for name in (spec.active, spec.previous, spec.fallback_pool):
        if name is not None:
            names.add(name)
    return names


def _changed_keys(
    before: Mapping[tuple[str, str], object], after: Mapping[tuple[str, str], object]
) -> set[tuple[str, str]]:
    """Keys present on one side only or with different values (both views are small: only
    the exceptions to the default are listed)."""
    changed = {key for key, value in after.items() if before.get(key, _ABSENT) != value}
    changed.update(key for key in before if key not in after)
    return changed


_ABSENT = object()
