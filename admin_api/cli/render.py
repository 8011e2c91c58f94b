"""What the admin commands show, as text: pure functions from the API's JSON documents.

Documents come from another process, possibly another version of turnout: the history
especially holds whatever was recorded (a route or pool removed by a reload is `null` on one
side). Nothing here may fail on a shape it did not expect; it shows less instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from admin_api.client import JSON
from admin_api.shares import shares


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Plain aligned columns, two spaces apart; columns of numbers right-aligned."""
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    cells = [list(header), *([_cell(value) for value in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _pct(value: float) -> str:
    return f"{round(value, 1):g}%"


def weights_text(weights: dict[str, int], percentages: dict[str, float] | None = None) -> str:
    """`blue 90 (90%), canary 10 (10%)`: the integers operators set, and what they mean (given
    `percentages`, the view's; shown from the weights themselves so that they add up to 100)."""
    if percentages is None:
        return ", ".join(f"{pool} {weight}" for pool, weight in weights.items())
    shown = shares(weights, 1)
    return ", ".join(f"{pool} {weight} ({_pct(shown[pool])})" for pool, weight in weights.items())


def observed_text(view: JSON) -> str:
    """The split actually served over the last minute (all workers), or `-` without traffic."""
    counts: dict[str, int] = view.get("observed") or {}
    total = sum(counts.values())
    if not total:
        return "-"
    # From the counts, at the precision shown: the view's 2-decimal percentages add up to 100,
    # but each rounded again to 1 decimal may not (16.67 x 2 + 66.67 -> 100.1).
    percent = shares(counts, 1)
    split = ", ".join(f"{pool} {_pct(percent[pool])}" for pool in counts)
    return f"{split} of {total}"


def _target(view: JSON) -> str:
    if view["mode"] == "blue-green":
        return f"active {view.get('active')}"
    return weights_text(view.get("weights") or {}, view.get("percentages"))


def _previous(view: JSON) -> str | None:
    if view["mode"] == "blue-green":
        previous: str | None = view.get("previous")
        return previous
    before = view.get("previousWeights")
    return weights_text(before) if before else None


def render_routes(document: JSON) -> str:
    rows = [
        [view["name"], view["mode"], _target(view), _previous(view), observed_text(view)]
        for view in document["routes"]
    ]
    header = ["ROUTE", "MODE", "WEIGHTS / ACTIVE", "PREVIOUS", "OBSERVED (LAST MINUTE)"]
    return f"revision {document['revision']}\n" + table(header, rows)


def route_summary(view: JSON) -> str:
    """One line for the result of a change: what the route does now, at which revision."""
    previous = _previous(view)
    was = f"; previous {previous}" if previous else ""
    return f"route {view['name']}: {_target(view)}{was}; revision {view['revision']}"


def render_route(view: JSON, pools: Sequence[JSON]) -> str:
    match = view.get("match") or {}
    hosts = ", ".join(match.get("hosts") or []) or "any host"
    lines = [
        f"route {view['name']}: {view['mode']}, revision {view['revision']}",
        f"  match     path {match.get('pathPrefix', '/')} ({hosts})",
    ]
    if view["mode"] == "blue-green":
        colours = ", ".join(view.get("pools") or [])
        lines.append(f"  active    {view.get('active')} (of {colours})")
    else:
        lines.append(f"  weights   {_target(view)}")
    lines.append(f"  previous  {_cell(_previous(view))}")
    observed = observed_text(view)
    if observed != "-":
        observed += " requests in the last minute"
    lines.append(f"  observed  {observed}")
    sticky = view.get("sticky")
    if sticky:
        lines.append(f"  sticky    cookie {sticky['cookie']}")
    for index, rule in enumerate(view.get("rules") or []):
        label = "rules" if index == 0 else ""
        value = f" {rule['value']}" if rule.get("value") is not None else ""
        lines.append(
            f"  {label:<8}  {rule['name']}: {rule['header']} {rule['match']}{value}"
            f" -> {rule['pool']}"
        )
    if view.get("fallbackPool"):
        lines.append(f"  fallback  {view['fallbackPool']}")
    return "\n".join(lines) + "\n\n" + render_pools(pools)


def route_pools(view: JSON) -> list[str]:
    """Every pool a route can send to, in the order an operator reads them."""
    names = list(view.get("weights") or view.get("pools") or [])
    names += [rule["pool"] for rule in view.get("rules") or []]
    if view.get("fallbackPool"):
        names.append(view["fallbackPool"])
    return list(dict.fromkeys(names))


def render_pools(pools: Sequence[JSON]) -> str:
    header = ["POOL", "BACKEND", "URL", "WEIGHT", "ADMIN", "HEALTH", "ELIGIBLE", "IN-FLIGHT"]
    rows = [
        [
            pool["name"],
            backend["name"],
            backend["url"],
            _backend_weight(backend),
            backend["adminState"],
            backend["health"],
            backend["eligible"],
            backend["inflight"],
        ]
        for pool in pools
        for backend in pool["backends"]
    ]
    empty = [pool["name"] for pool in pools if not pool["backends"]]
    note = "".join(f"\npool {name}: no backends" for name in empty)
    return table(header, rows) + note


def _backend_weight(backend: JSON) -> object:
    ramp = backend.get("slowStart")
    if not ramp:
        return backend["weight"]
    return (
        f"{backend['effectiveWeight']:g} of {backend['weight']} (slow start "
        f"{ramp['progress']:g} %, {ramp['remainingSeconds']:.0f} s left)"
    )


def pool_summary(view: JSON) -> str:
    count = len(view["backends"])
    return (
        f"pool {view['name']}: {view['eligible']} of {count} backend(s) eligible; "
        f"revision {view['revision']}"
    )


def backend_summary(pool: str, view: JSON) -> str:
    eligible = "eligible" if view["eligible"] else "not eligible"
    return (
        f"backend {pool}/{view['name']}: {view['adminState']}, {view['health']}, "
        f"{eligible}, {view['inflight']} in flight"
    )


def render_workers(document: JSON) -> str:
    header = ["ID", "PID", "SERVING", "REVISION", "CRASHES", "REQUESTS", "CONNECTIONS"]
    rows = [
        [
            w["id"],
            w["pid"],
            w["serving"],
            w["revision"],
            w["crashes"],
            w["requests"],
            w["connections"],
        ]
        for w in document["workers"]
    ]
    summary = f"revision {document['revision']}, {document['crashes']} crash(es) since start"
    return summary + "\n" + table(header, rows)


def render_history(document: JSON) -> str:
    header = ["REVISION", "TIME (UTC)", "ACTOR", "ACTION", "TARGET", "CHANGE"]
    rows = [
        [
            change["revision"],
            _time(change["time"]),
            change["actor"],
            change["action"],
            change["target"],
            change_text(change.get("before"), change.get("after")) or None,
        ]
        for change in document["changes"]
    ]
    return table(header, rows)


def _time(iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S}"
    except ValueError:
        return iso


def change_text(before: Any, after: Any) -> str:
    """What a history entry changed, in a few words (`blue 90, canary 10 -> blue 100,
    canary 0`; `blue-1 ready -> drain`; `route checkout removed`); empty when there is nothing
    short to say."""
    old, new = _mapping(before), _mapping(after)
    parts: list[str] = []
    old_routes, new_routes = _mapping(old.get("routes")), _mapping(new.get("routes"))
    for name in dict.fromkeys([*new_routes, *old_routes]):
        parts.extend(_route_change(name, old_routes.get(name), new_routes.get(name)))
    old_pools, new_pools = _mapping(old.get("pools")), _mapping(new.get("pools"))
    for name in dict.fromkeys([*new_pools, *old_pools]):
        parts.extend(_pool_change(name, old_pools.get(name), new_pools.get(name)))
    if "phase" in new:  # a rollout's transition: its phase and the route's split
        parts.extend(_rollout_change(old, new))
    return "; ".join(parts)


def _rollout_change(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    parts = []
    if old.get("phase") != new.get("phase"):
        parts.append(f"{old.get('phase') or 'no rollout'} -> {new.get('phase')}")
    if old.get("weights") != new.get("weights"):
        parts.append(f"{_split(old.get('weights'))} -> {_split(new.get('weights'))}")
    if old.get("active") != new.get("active"):
        parts.append(f"active {old.get('active')} -> {new.get('active')}")
    # A pool rollout's entry keeps its stage and the pool's admin states {backend: state}.
    if "stage" in new and old.get("stage") != new.get("stage"):
        parts.append(f"{old.get('stage') or '-'} -> {new.get('stage')}")
    before, after = _mapping(old.get("backends")), _mapping(new.get("backends"))
    for name in dict.fromkeys([*before, *after]):
        if before.get(name) != after.get(name):
            parts.append(f"{name} {before.get(name) or 'added'} -> {after.get(name) or 'removed'}")
    return parts


def _split(weights: Any) -> str:
    # A rollout's history entry keeps the route's weights as {pool: weight}.
    return ", ".join(f"{pool} {weight}" for pool, weight in _mapping(weights).items()) or "-"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _route_change(name: str, old: Any, new: Any) -> list[str]:
    if old is None and new is None:
        return []
    if old is None:
        return [f"route {name} added"]
    if new is None:
        return [f"route {name} removed"]
    old, new = _mapping(old), _mapping(new)
    parts = []
    if old.get("weights") != new.get("weights"):
        parts.append(f"{_pairs(old.get('weights'))} -> {_pairs(new.get('weights'))}")
    if old.get("active") != new.get("active"):
        parts.append(f"active {old.get('active')} -> {new.get('active')}")
    return parts


def _pairs(weights: Any) -> str:
    # History stores the route's spec: weights as [[pool, weight], ...].
    try:
        return ", ".join(f"{pool} {weight}" for pool, weight in weights)
    except (TypeError, ValueError):
        return str(weights)


def _pool_change(name: str, old: Any, new: Any) -> list[str]:
    if old is None and new is None:
        return []
    if old is None:
        return [f"pool {name} added"]
    if new is None:
        return [f"pool {name} removed"]
    before, after = _backends(old), _backends(new)
    parts = [f"+{name}/{b}" for b in after if b not in before]
    parts += [f"-{name}/{b}" for b in before if b not in after]
    for backend, now in after.items():
        then = before.get(backend)
        if then is None:
            continue
        if then.get("admin_state") != now.get("admin_state"):
            parts.append(f"{name}/{backend} {then.get('admin_state')} -> {now.get('admin_state')}")
        if then.get("weight") != now.get("weight"):
            parts.append(f"{name}/{backend} weight {then.get('weight')} -> {now.get('weight')}")
    return parts


def _backends(pool: Any) -> dict[str, dict[str, Any]]:
    """A pool's backends by name (a pool spec's `backends` is a list of objects)."""
    listed = _mapping(pool).get("backends")
    if not isinstance(listed, list):
        return {}
    return {str(b["name"]): b for b in listed if isinstance(b, dict) and "name" in b}
