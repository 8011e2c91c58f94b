"""What the admin API shows of routes: the spec plus what it means (percentages, revision)."""

from __future__ import annotations

from typing import Any

from router import Snapshot
from router.spec import RouteSpec
from router.split import percentages


def route_view(spec: RouteSpec, snapshot: Snapshot) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": spec.name,
        "revision": snapshot.revision,
        "mode": spec.mode,
        "match": {"hosts": list(spec.hosts), "pathPrefix": spec.path_prefix},
        "rules": [
            {"name": r.name, "header": r.header, "match": r.match, "value": r.value, "pool": r.pool}
            for r in spec.rules
        ],
        "fallbackPool": spec.fallback_pool,
    }
    if spec.mode == "weighted":
        view["weights"] = dict(spec.weights)
        view["percentages"] = {k: round(v, 4) for k, v in percentages(spec.weights).items()}
        view["previousWeights"] = (
            dict(spec.previous_weights) if spec.previous_weights is not None else None
        )
        view["sticky"] = (
            {"cookie": spec.sticky.cookie, "issue": spec.sticky.issue} if spec.sticky else None
        )
    else:
        view["pools"] = list(spec.colours)
        view["active"] = spec.active
        view["previous"] = spec.previous
    return view
