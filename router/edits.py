"""Pure edits: an old snapshot in, a new validated snapshot out, revision bumped by one.

Writers (admin API, health checker, rollout controller) never mutate a snapshot; they call one
of these and publish the result with a single assignment. Because weights, colours, admin
states and health live in one snapshot, no reader can ever see, say, new weights with old
health (the race Pingora's TODO warns about). Every edit validates through `build_snapshot`
and raises `SpecError` (naming the field) rather than produce a snapshot that cannot route.

An edit that asks for what already is (the active colour, the current weights) returns the
snapshot unchanged rather than refuse it or touch `previous`/`previous_weights`: a deploy script
may repeat a step, and rollback must still return to where the route was before the first one.
The control plane publishes nothing for a result whose spec equals the current one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from router.build import Problem, SpecError, build_snapshot
from router.snapshot import Snapshot
from router.spec import AdminState, BackendSpec, Health, PoolSpec, RouteSpec, Spec


def rebuild(snapshot: Snapshot, spec: Spec, health: Mapping[tuple[str, str], Health]) -> Snapshot:
    """A new snapshot from an edited spec or health view, one revision later."""
    return build_snapshot(spec, health, snapshot.revision + 1, snapshot.readmitted, snapshot)


def with_health_view(
    snapshot: Snapshot,
    health: Mapping[tuple[str, str], Health],
    readmitted: Mapping[tuple[str, str], float],
) -> Snapshot:
    """Replace the whole health view (what the health checker sees), with the wall time each
    backend became healthy again (slow start ramps from there)."""
    return build_snapshot(snapshot.spec, health, snapshot.revision + 1, readmitted, snapshot)


def with_weights(snapshot: Snapshot, route: str, weights: Mapping[str, int]) -> Snapshot:
    """Replace all weights of a weighted route. Pools keep their declared order (the baseline
    stays first, so stickiness holds; see router.split); new pools go at the end."""
    spec = _route_spec(snapshot, route)
    if spec.mode != "weighted":
        raise SpecError([Problem(f"routes.{route}.weights", "route is not in weighted mode")])
    order = [name for name, _ in spec.weights]
    order += [name for name in weights if name not in order]
    # A misspelt pool is both unknown and leaves a real one missing: say both.
    problems = [
        Problem(f"routes.{route}.weights.{name}", f"unknown pool {name!r}")
        for name in weights
        if snapshot.spec.pool(name) is None
    ]
    problems += [
        Problem(f"routes.{route}.weights.{name}", "missing: give every weight")
        for name in order
        if name not in weights
    ]
    if problems:
        raise SpecError(problems)
    new_weights = tuple((name, weights[name]) for name in order)
    if new_weights == spec.weights:
        return snapshot
    edited = replace(spec, weights=new_weights, previous_weights=spec.weights)
    return rebuild(snapshot, _replace_route(snapshot.spec, edited), snapshot.health)


def switch_active(snapshot: Snapshot, route: str, to: str) -> Snapshot:
    """Blue-green switch: all new requests go to `to`; the old active becomes `previous`."""
    spec = _route_spec(snapshot, route)
    if spec.mode != "blue-green":
        raise SpecError([Problem(f"routes.{route}", "route is not in blue-green mode")])
    if to not in spec.colours:
        raise SpecError([Problem("to", f"{to!r} is not one of the route's pools")])
    if to == spec.active:
        return snapshot
    edited = replace(spec, active=to, previous=spec.active)
    return rebuild(snapshot, _replace_route(snapshot.spec, edited), snapshot.health)


def rollback(snapshot: Snapshot, route: str) -> Snapshot:
    """Back to the previous colour (blue-green) or the previous weights (weighted)."""
    spec = _route_spec(snapshot, route)
    if spec.mode == "blue-green":
        if spec.previous is None:
            raise SpecError([Problem(f"routes.{route}.previous", "nothing to roll back to")])
        edited = replace(spec, active=spec.previous, previous=spec.active)
    else:
        if spec.previous_weights is None:
            raise SpecError(
                [Problem(f"routes.{route}.previous_weights", "nothing to roll back to")]
            )
        edited = replace(spec, weights=spec.previous_weights, previous_weights=spec.weights)
    return rebuild(snapshot, _replace_route(snapshot.spec, edited), snapshot.health)


def promote(snapshot: Snapshot, route: str, pool: str | None = None) -> Snapshot:
    """Argo's promote: the candidate gets 100 % (weighted route). With two pools the candidate
    is the one that is not the baseline; with more it must be named."""
    spec = _route_spec(snapshot, route)
    if spec.mode != "weighted":
        raise SpecError([Problem(f"routes.{route}", "promote applies to weighted routes")])
    names = [name for name, _ in spec.weights]
    if pool is None:
        if len(names) != 2:
            raise SpecError(
                [Problem("pool", "name the pool to promote (the route has more than two)")]
            )
        pool = names[1]
    if pool not in names:
        raise SpecError([Problem("pool", f"{pool!r} is not one of the route's pools")])
    return with_weights(snapshot, route, {name: 100 if name == pool else 0 for name in names})


def abort(snapshot: Snapshot, route: str) -> Snapshot:
    """Argo's abort: the baseline (the first pool of the split) gets 100 %, the others 0."""
    spec = _route_spec(snapshot, route)
    if spec.mode != "weighted":
        raise SpecError(
            [Problem(f"routes.{route}", "abort applies to weighted routes; use rollback")]
        )
    names = [name for name, _ in spec.weights]
    return with_weights(snapshot, route, {name: 100 if name == names[0] else 0 for name in names})


def with_route(snapshot: Snapshot, route: RouteSpec) -> Snapshot:
    """Replace a route's whole definition (undo to an earlier revision)."""
    _route_spec(snapshot, route.name)
    return rebuild(snapshot, _replace_route(snapshot.spec, route), snapshot.health)


def with_admin_state(snapshot: Snapshot, pool: str, backend: str, state: AdminState) -> Snapshot:
    """Set a backend's admin state (ready | drain | maint)."""
    return with_backend(snapshot, pool, backend, admin_state=state)


def with_backend(
    snapshot: Snapshot,
    pool: str,
    backend: str,
    *,
    admin_state: AdminState | None = None,
    weight: int | None = None,
) -> Snapshot:
    """Change a backend's admin state and/or weight."""
    pool_spec = _pool_spec(snapshot, pool)
    current = _backend_spec(pool_spec, backend)
    changed = replace(
        current,
        admin_state=current.admin_state if admin_state is None else admin_state,
        weight=current.weight if weight is None else weight,
    )
    backends = tuple(changed if b.name == backend else b for b in pool_spec.backends)
    spec = _replace_pool(snapshot.spec, replace(pool_spec, backends=backends))
    return rebuild(snapshot, spec, snapshot.health)


def with_backend_added(snapshot: Snapshot, pool: str, backend: BackendSpec) -> Snapshot:
    """Add a backend to a pool at runtime (rolling deployments)."""
    pool_spec = _pool_spec(snapshot, pool)
    if any(b.name == backend.name for b in pool_spec.backends):
        raise SpecError([Problem("name", f"pool {pool!r} already has a backend {backend.name!r}")])
    spec = _replace_pool(snapshot.spec, replace(pool_spec, backends=(*pool_spec.backends, backend)))
    return rebuild(snapshot, spec, snapshot.health)


def with_backend_removed(snapshot: Snapshot, pool: str, backend: str) -> Snapshot:
    """Remove a backend from a pool; requests in flight to it finish on their connections."""
    pool_spec = _pool_spec(snapshot, pool)
    _backend_spec(pool_spec, backend)
    backends = tuple(b for b in pool_spec.backends if b.name != backend)
    spec = _replace_pool(snapshot.spec, replace(pool_spec, backends=backends))
    health = {key: value for key, value in snapshot.health.items() if key != (pool, backend)}
    return rebuild(snapshot, spec, health)


def with_health(snapshot: Snapshot, pool: str, backend: str, health: Health) -> Snapshot:
    """Record a backend's health as the checker sees it."""
    _backend_spec(_pool_spec(snapshot, pool), backend)
    view = dict(snapshot.health)
    view[(pool, backend)] = health
    return rebuild(snapshot, snapshot.spec, view)


def _backend_spec(pool: PoolSpec, backend: str) -> BackendSpec:
    for spec in pool.backends:
        if spec.name == backend:
            return spec
    raise SpecError([Problem(f"pools.{pool.name}.backends", f"unknown backend {backend!r}")])


def _route_spec(snapshot: Snapshot, route: str) -> RouteSpec:
    spec = snapshot.spec.route(route)
    if spec is None:
        raise SpecError([Problem("route", f"unknown route {route!r}")])
    return spec


def _pool_spec(snapshot: Snapshot, pool: str) -> PoolSpec:
    spec = snapshot.spec.pool(pool)
    if spec is None:
        raise SpecError([Problem("pool", f"unknown pool {pool!r}")])
    return spec


def _replace_route(spec: Spec, route: RouteSpec) -> Spec:
    return replace(spec, routes=tuple(route if r.name == route.name else r for r in spec.routes))


def _replace_pool(spec: Spec, pool: PoolSpec) -> Spec:
    return replace(spec, pools=tuple(pool if p.name == pool.name else p for p in spec.pools))
