"""What the admin API shows: the routing state as response models (admin_api.models)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from admin_api import models
from admin_api.shares import shares
from proxy.health import BackendHealth, HealthChecker
from proxy.state import Change
from proxy.telemetry import Telemetry
from router import Snapshot
from router.slowstart import ramp_of
from router.spec import PoolSpec, RouteSpec
from router.split import percentages


def route_view(spec: RouteSpec, snapshot: Snapshot, telemetry: Telemetry) -> models.RouteView:
    observed = telemetry.observed(spec.name)
    view = models.RouteView(
        name=spec.name,
        revision=snapshot.revision,
        mode=spec.mode,
        match=models.Match(hosts=list(spec.hosts), path_prefix=spec.path_prefix),
        rules=[
            models.Rule(name=r.name, header=r.header, match=r.match, value=r.value, pool=r.pool)
            for r in spec.rules
        ],
        fallback_pool=spec.fallback_pool,
        observed=observed,
        observed_percentages=shares(observed, 2),
    )
    if spec.mode == "weighted":
        view.weights = dict(spec.weights)
        view.percentages = {k: round(v, 4) for k, v in percentages(spec.weights).items()}
        if spec.previous_weights is not None:
            view.previous_weights = dict(spec.previous_weights)
        if spec.sticky is not None:
            sticky = spec.sticky
            view.sticky = models.Sticky(
                cookie=sticky.cookie,
                issue=sticky.issue,
                max_age=sticky.max_age,
                path=sticky.path,
                secure=sticky.secure,
                http_only=sticky.http_only,
                same_site=sticky.same_site,
            )
    else:
        view.pools = list(spec.colours)
        view.active = spec.active
        view.previous = spec.previous
    return view


def pool_view(
    spec: PoolSpec, snapshot: Snapshot, telemetry: Telemetry, health: HealthChecker | None = None
) -> models.PoolView:
    pool = snapshot.pools[spec.name]
    inflight = telemetry.inflight()
    eligible = {backend.name for backend in pool.eligible}
    now = time.time()
    backends = []
    for backend in pool.backends:
        ramp = ramp_of(pool, backend.name, now)
        view = models.BackendView(
            name=backend.name,
            url=f"http://{backend.host}:{backend.port}",
            weight=backend.weight,
            effective_weight=round(ramp.effective_weight, 3) if ramp else backend.weight,
            admin_state=backend.admin_state,
            health=backend.health,
            eligible=backend.name in eligible,
            inflight=inflight.get((spec.name, backend.name), 0),
        )
        state = health.backends.get(backend.key) if health is not None else None
        if state is not None:
            _health_details(view, state)
        if ramp is not None:
            view.slow_start = models.SlowStartView(
                progress=round(100.0 * ramp.progress, 1),
                since=_iso(ramp.started),
                until=_iso(ramp.until),
                remaining_seconds=round(max(0.0, ramp.until - now), 3),
            )
        backends.append(view)
    return models.PoolView(
        name=spec.name,
        revision=snapshot.revision,
        backends=backends,
        slow_start=spec.slow_start,
        eligible=len(pool.eligible),
        panic=pool.panic,
    )


def _health_details(view: models.BackendView, state: BackendHealth) -> None:
    if state.checked:
        last = state.last
        view.check = models.CheckView(
            state=state.state,
            consecutive_successes=state.successes,
            consecutive_failures=state.failures,
            last_probe=models.ProbeView(
                at=_iso(last.at),
                ok=last.ok,
                status=last.status,
                error=last.error,
                duration_ms=round(last.duration * 1000, 2),
            )
            if last is not None
            else None,
        )
    if state.ejected:
        remaining = max(0.0, state.ejected_until - time.monotonic())
        view.ejection = models.EjectionView(
            reason=state.ejection_reason or "",
            since=_iso(state.ejected_at),
            until=_iso(time.time() + remaining),
            ejections=state.ejections,
        )


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def change_view(change: Change) -> models.ChangeView:
    return models.ChangeView(
        revision=change.revision,
        time=datetime.fromtimestamp(change.time, UTC).isoformat(timespec="milliseconds"),
        actor=change.actor,
        action=change.action,
        target=change.target,
        before=change.before,
        after=change.after,
    )
