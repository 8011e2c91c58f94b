"""The history of changes: what a change did, as JSON, and what a route was at a revision.

Theory of operation. Every change the control plane makes is recorded as a `proxy.state.Change`
whose `before` and `after` hold only what changed: the routes and pools whose definitions differ,
as JSON (None for one that did not exist on that side). That is enough to answer "what was
route X at revision N" for `undo`, as far back as the history reaches. Pure functions over
values: the control plane owns the list, appends to it under its lock and saves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter

from proxy.state import Change
from router import PoolSpec, RouteSpec, Spec

_ROUTE = TypeAdapter(RouteSpec)
_POOL = TypeAdapter(PoolSpec)

Side = dict[str, Any]


def spec_diff(before: Spec, after: Spec) -> tuple[Side, Side]:
    """The routes and pools that differ, each side as JSON (`before`, `after`)."""
    old: Side = {"routes": {}, "pools": {}}
    new: Side = {"routes": {}, "pools": {}}
    for name in dict.fromkeys([r.name for r in before.routes] + [r.name for r in after.routes]):
        was, now = before.route(name), after.route(name)
        if was != now:
            old["routes"][name] = _ROUTE.dump_python(was, mode="json") if was else None
            new["routes"][name] = _ROUTE.dump_python(now, mode="json") if now else None
    for name in dict.fromkeys([p.name for p in before.pools] + [p.name for p in after.pools]):
        was_pool, now_pool = before.pool(name), after.pool(name)
        if was_pool != now_pool:
            old["pools"][name] = _POOL.dump_python(was_pool, mode="json") if was_pool else None
            new["pools"][name] = _POOL.dump_python(now_pool, mode="json") if now_pool else None
    return old, new


def route_at(
    history: Sequence[Change], current: Spec, current_revision: int, name: str, revision: int
) -> RouteSpec | None:
    """The route's definition as it was at `revision`, from the history. None when the history
    does not reach back that far, or the route did not exist then."""
    if not history or not history[0].revision <= revision <= current_revision:
        return None

    def routes(side: Side | None) -> Side:
        found: Side = (side or {}).get("routes", {})
        return found

    # The last change at or before `revision` that touched the route says what it became;
    # failing that, the first change after it says what it was; failing that, it never
    # changed in the history and is what it is now.
    earlier = [c for c in history if c.revision <= revision and name in routes(c.after)]
    if earlier:
        state = routes(earlier[-1].after)[name]
    else:
        later = next(
            (c for c in history if c.revision > revision and name in routes(c.before)), None
        )
        if later is None:
            return current.route(name)
        state = routes(later.before)[name]
    return _ROUTE.validate_python(state) if state is not None else None
