"""One frame of the event stream: the instance as the dashboard shows it, at one moment.

The frame is made of the same view models as the API's answers (admin_api.views,
admin_api.rollout_views, admin_api.pool_rollout_views), dumped as the API dumps them
(camelCase), so the page and a script read one vocabulary: `routes` are GET /v1/routes' items,
`pools` GET /v1/pools' items, `rollouts` and `poolRollouts` GET /v1/rollouts' lists (running or
finished), `history` the first entries of GET /v1/history, `workers` GET /v1/workers and
`fleet` GET /v1/fleet (admin_api.fleet.FleetView: in file mode this instance alone). Only
`series` and `evidence` are the stream's own (admin_api.series):

    {"time": ISO 8601, "revision": int,
     "routes": [RouteView], "pools": [PoolView], "rollouts": [RolloutView],
     "poolRollouts": [PoolRolloutView], "history": [ChangeView, newest first],
     "workers": WorkerList, "fleet": FleetView,
     "series": {"<route>/<pool>": {"rps": [60], "errorRate": [60, null without requests],
                                   "p50": s|null, "p99": s|null, "requests": n, "errors": n}},
     "evidence": {"route/<name>" | "pool/<name>": [[epoch s, errors, latency|null], ...]},
     "frames": n}

`frames` counts the frames the producer has built, this one included: a reader can tell a
frame it missed (a slow reader loses old frames) from one that was never made. A rollout's
threshold is in its view (`evidence.errors.threshold`, a pool rollout's `evidence.threshold`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from admin_api.fleet import FleetView
from admin_api.pool_rollout_views import pool_rollout_view
from admin_api.rollout_views import evidence_value, iso, rollout_view
from admin_api.series import EvidencePoint, EvidenceSample, Key, SeriesView
from admin_api.views import change_view, pool_view, route_view, workers_view
from proxy.control.rolling.status import PoolRolloutState
from proxy.control.rollout.status import RolloutState
from proxy.control.values import HistoryPage, Pools, Routes, Workers
from router import RouteSpec

HISTORY = 10
"""Changes in a frame: the last few, as the page's "recent changes"."""


@dataclass(frozen=True, slots=True)
class State:
    """What the control service said, read in one go after the workers were asked."""

    time: float
    routes: Routes
    pools: Pools
    workers: Workers
    rollouts: tuple[RolloutState, ...]
    pool_rollouts: tuple[PoolRolloutState, ...]
    history: HistoryPage
    fleet: FleetView


def route_pools(routes: Routes) -> set[Key]:
    """Every (route, pool) a route can send to: the series the page shows even when idle."""
    return {(route.spec.name, pool) for route in routes.routes for pool in _pools(route.spec)}


def _pools(spec: RouteSpec) -> Iterator[str]:
    yield from (pool for pool, _ in spec.weights)
    yield from spec.colours
    yield from (rule.pool for rule in spec.rules)
    if spec.fallback_pool is not None:
        yield spec.fallback_pool


def evidence_samples(
    rollouts: Sequence[RolloutState], pool_rollouts: Sequence[PoolRolloutState]
) -> dict[str, EvidenceSample]:
    """Each rollout's evidence now, keyed as the frame's `evidence` is."""
    samples = {
        f"route/{state.rollout.route}": EvidenceSample(
            started=state.rollout.started,
            live=not state.rollout.final,
            errors=evidence_value(state.evidence.errors),
            latency=evidence_value(state.evidence.latency),
        )
        for state in rollouts
    }
    for pool in pool_rollouts:
        samples[f"pool/{pool.rollout.pool}"] = EvidenceSample(
            started=pool.rollout.started,
            live=not pool.rollout.final,
            errors=evidence_value(pool.errors),
            latency=None,  # a pool rollout's judge compares errors only
        )
    return samples


def frame(
    state: State,
    series: dict[Key, SeriesView],
    evidence: dict[str, list[EvidencePoint]],
    frames: int,
) -> dict[str, Any]:
    """The frame as JSON-ready data (camelCase, as the API's answers)."""
    return {
        "time": iso(state.time),
        "revision": state.routes.revision,
        "routes": [_dump(route_view(route)) for route in state.routes.routes],
        "pools": [_dump(pool_view(pool)) for pool in state.pools.pools],
        "rollouts": [_dump(rollout_view(rollout)) for rollout in state.rollouts],
        "poolRollouts": [_dump(pool_rollout_view(pool)) for pool in state.pool_rollouts],
        "history": [_dump(change_view(change)) for change in state.history.changes],
        "workers": _dump(workers_view(state.workers)),
        "fleet": _dump(state.fleet),
        "series": {f"{route}/{pool}": _series(view) for (route, pool), view in series.items()},
        "evidence": {key: [list(point) for point in points] for key, points in evidence.items()},
        "frames": frames,
    }


def _series(view: SeriesView) -> dict[str, Any]:
    return {
        "rps": list(view.rps),
        "errorRate": list(view.error_rate),
        "p50": view.p50,
        "p99": view.p99,
        "requests": view.requests,
        "errors": view.errors,
    }


def _dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", by_alias=True)
