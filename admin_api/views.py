"""What the admin API shows: the control service's values rendered as response models
(admin_api.models): camelCase, rounded for people, times in ISO 8601."""

from __future__ import annotations

from datetime import UTC, datetime

from admin_api import models
from admin_api.shares import shares
from proxy.control.values import BackendState, Change, PoolState, RouteState, Workers
from router.split import percentages


def route_view(state: RouteState) -> models.RouteView:
    spec = state.spec
    observed = dict(state.observed)
    view = models.RouteView(
        name=spec.name,
        revision=state.revision,
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


def pool_view(state: PoolState) -> models.PoolView:
    return models.PoolView(
        name=state.spec.name,
        revision=state.revision,
        backends=[backend_view(backend) for backend in state.backends],
        slow_start=state.spec.slow_start,
        eligible=state.eligible,
        panic=state.panic,
    )


def backend_view(state: BackendState) -> models.BackendView:
    ramp = state.slow_start
    view = models.BackendView(
        name=state.name,
        url=state.url,
        weight=state.weight,
        effective_weight=round(state.effective_weight, 3) if ramp else state.weight,
        admin_state=state.admin_state,
        health=state.health,
        eligible=state.eligible,
        inflight=state.inflight,
    )
    check = state.check
    if check is not None:
        last = check.last
        view.check = models.CheckView(
            state=check.state,
            consecutive_successes=check.successes,
            consecutive_failures=check.failures,
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
    ejection = state.ejection
    if ejection is not None:
        view.ejection = models.EjectionView(
            reason=ejection.reason,
            since=_iso(ejection.since),
            until=_iso(ejection.until),
            ejections=ejection.ejections,
        )
    if ramp is not None:
        view.slow_start = models.SlowStartView(
            progress=round(100.0 * ramp.progress, 1),
            since=_iso(ramp.since),
            until=_iso(ramp.until),
            remaining_seconds=round(ramp.remaining, 3),
        )
    return view


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def change_view(change: Change) -> models.ChangeView:
    return models.ChangeView(
        revision=change.revision,
        time=_iso(change.time),
        actor=change.actor,
        action=change.action,
        target=change.target,
        before=change.before,
        after=change.after,
    )


def workers_view(found: Workers) -> models.WorkerList:
    return models.WorkerList(
        revision=found.revision,
        crashes=found.crashes,
        workers=[
            models.WorkerView(
                id=worker.id,
                pid=worker.pid,
                serving=worker.serving,
                revision=worker.revision,
                crashes=worker.crashes,
                requests=worker.requests,
                connections=worker.connections,
            )
            for worker in found.workers
        ],
    )
