"""The history of changes: what a change did, as JSON, and what a route was at a revision.

Theory of operation. Every change the control plane makes is recorded as a `proxy.state.Change`
whose `before` and `after` hold only what changed: the routes and pools whose definitions differ,
as JSON (None for one that did not exist on that side). That is enough to answer "what was
route X at revision N" for `undo`, as far back as the history reaches. Pure functions over
values: the control plane owns the list, appends to it under its lock and saves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter

from proxy.state import Change
from router import PoolSpec, RouteSpec, Spec

_ROUTE = TypeAdapter(RouteSpec)
_POOL = TypeAdapter(PoolSpec)

Side = dict[str, Any]
Named = TypeVar("Named", PoolSpec, RouteSpec)


def spec_diff(before: Spec, after: Spec) -> tuple[Side, Side]:
    """The routes and pools that differ, each side as JSON (`before`, `after`). Only what
    differs is turned into JSON; an untouched definition is the same object on both sides, so
    comparing costs a lookup and an identity check per name."""
    old: Side = {"routes": {}, "pools": {}}
    new: Side = {"routes": {}, "pools": {}}
    _differences(before.routes, after.routes, _ROUTE, old["routes"], new["routes"])
    _differences(before.pools, after.pools, _POOL, old["pools"], new["pools"])
    return old, new


def _differences(
    before: Sequence[Named],
    after: Sequence[Named],
    adapter: TypeAdapter[Any],
    old: Side,
    new: Side,
) -> None:
    if before is after:
        return
    was_by_name: dict[str, Named] = {item.name: item for item in before}
    now_by_name: dict[str, Named] = {item.name: item for item in after}
    for name in dict.fromkeys([*was_by_name, *now_by_name]):
        was, now = was_by_name.get(name), now_by_name.get(name)
        if was is not now and was != now:
            old[name] = adapter.dump_python(was, mode="json") if was else None
            new[name] = adapter.dump_python(now, mode="json") if now else None


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
