"""Pool endpoints: see backends, drain and re-enable them, add and remove them at runtime."""

from __future__ import annotations

import asyncio

from aiohttp import web
from pydantic import ValidationError

from admin_api import models
from admin_api.context import CONTROL
from admin_api.http import actor, body, duration, if_match, respond
from admin_api.problems import Problem, invalid_body, not_found
from admin_api.views import pool_view
from proxy.config import BackendConfig
from proxy.control import ControlPlane
from router import Snapshot, with_backend, with_backend_added, with_backend_removed
from router.guards import require_eligible

DRAIN_POLL = 0.05


async def list_pools(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    await control.supervisor.query_stats()
    snapshot = control.snapshot
    pools = [
        pool_view(spec, snapshot, control.telemetry, control.health) for spec in snapshot.spec.pools
    ]
    return respond(
        models.PoolList(revision=snapshot.revision, pools=pools), revision=snapshot.revision
    )


async def get_pool(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = _pool(request, control)
    await control.supervisor.query_stats()
    return _view(control, name, control.snapshot)


async def post_backend(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = _pool(request, control)
    new = body(request, models.BackendCreate)
    try:
        spec = BackendConfig(
            name=new.name, url=new.url, weight=new.weight, admin_state=new.admin_state
        ).spec()
    except ValidationError as error:
        raise invalid_body(error) from error
    snapshot = await control.apply(
        lambda current: with_backend_added(current, name, spec),
        actor=actor(request),
        action="add-backend",
        target=f"pool/{name}/backend/{spec.name}",
        if_match=if_match(request),
    )
    return _view(control, name, snapshot, status=201)


async def patch_backend(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    pool, backend = _backend(request, control)
    change = body(request, models.BackendPatch)
    if change.admin_state is None and change.weight is None:
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            "give adminState and/or weight",
            [{"field": "(body)", "message": "nothing to change"}],
        )
    wait = request.query.get("wait")
    seconds = duration(wait, "wait") if wait is not None else None
    if seconds is not None and change.admin_state not in ("drain", "maint"):
        raise Problem(
            400,
            "bad-query",
            "Bad query parameter",
            "wait: only with adminState drain or maint (it waits for in-flight requests to end)",
        )
    action = f"set-{change.admin_state}" if change.admin_state else "set-weight"

    def edit(current: Snapshot) -> Snapshot:
        changed = with_backend(
            current, pool, backend, admin_state=change.admin_state, weight=change.weight
        )
        if not change.force:
            require_eligible(current, changed)
        return changed

    snapshot = await control.apply(
        edit,
        actor=actor(request),
        action=action,
        target=f"pool/{pool}/backend/{backend}",
        if_match=if_match(request),
    )
    if seconds is not None:
        left = await wait_drained(control, pool, backend, seconds)
        if left:
            raise Problem(
                409,
                "drain-timeout",
                "Requests still in flight at the deadline",
                f"{left} request(s) still in flight to {pool}/{backend} after {seconds:g} s "
                "(the admin state change itself was applied)",
                [{"field": "inflight", "message": str(left)}],
            )
    return respond(_backend_view(control, pool, backend, snapshot), revision=snapshot.revision)


async def delete_backend(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    pool, backend = _backend(request, control)
    force = request.query.get("force", "false").lower() in ("1", "true", "yes")

    def remove(current: Snapshot) -> Snapshot:
        spec = current.spec.pool(pool)
        assert spec is not None
        state = next(b.admin_state for b in spec.backends if b.name == backend)
        if state == "ready" and not force:
            raise Problem(
                409,
                "backend-in-service",
                "The backend still takes traffic",
                f"drain {pool}/{backend} first (PATCH adminState=drain, ?wait=...) "
                "or remove it with ?force=true",
            )
        changed = with_backend_removed(current, pool, backend)
        if not force:
            require_eligible(current, changed)
        return changed

    snapshot = await control.apply(
        remove,
        actor=actor(request),
        action="remove-backend",
        target=f"pool/{pool}/backend/{backend}",
        if_match=if_match(request),
    )
    return _view(control, pool, snapshot)


async def wait_drained(control: ControlPlane, pool: str, backend: str, seconds: float) -> int:
    """Wait until no worker has a request in flight to the backend (or the deadline): the
    requests left. Sound because a worker picks a backend only from the snapshot current when
    a request's routing begins, and this is called after every worker applied the change."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        await control.supervisor.query_stats()
        left = control.telemetry.inflight().get((pool, backend), 0)
        if left == 0 or loop.time() >= deadline:
            return left
        await asyncio.sleep(min(DRAIN_POLL, max(0.0, deadline - loop.time())))


# Shared


def _pool(request: web.Request, control: ControlPlane) -> str:
    name = request.match_info["pool"]
    if control.snapshot.spec.pool(name) is None:
        raise not_found("pool", name)
    return name


def _backend(request: web.Request, control: ControlPlane) -> tuple[str, str]:
    pool = _pool(request, control)
    backend = request.match_info["backend"]
    spec = control.snapshot.spec.pool(pool)
    assert spec is not None
    if all(b.name != backend for b in spec.backends):
        raise not_found("backend", f"{pool}/{backend}")
    return pool, backend


def _view(control: ControlPlane, name: str, snapshot: Snapshot, status: int = 200) -> web.Response:
    spec = snapshot.spec.pool(name)
    assert spec is not None
    return respond(
        pool_view(spec, snapshot, control.telemetry, control.health),
        status=status,
        revision=snapshot.revision,
    )


def _backend_view(
    control: ControlPlane, pool: str, backend: str, snapshot: Snapshot
) -> models.BackendView:
    spec = snapshot.spec.pool(pool)
    assert spec is not None
    return next(
        b
        for b in pool_view(spec, snapshot, control.telemetry, control.health).backends
        if b.name == backend
    )
