"""Pool endpoints: see backends, drain and re-enable them, add and remove them at runtime."""

from __future__ import annotations

from aiohttp import web

from admin_api import models
from admin_api.context import SERVICE
from admin_api.http import body, duration, respond, write
from admin_api.problems import Problem
from admin_api.views import backend_view, pool_view
from proxy.control.values import PoolState


async def list_pools(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].pools()
    pools = [pool_view(state) for state in found.pools]
    return respond(models.PoolList(revision=found.revision, pools=pools), revision=found.revision)


async def get_pool(request: web.Request) -> web.Response:
    return _view(await request.app[SERVICE].pool(request.match_info["pool"]))


async def post_backend(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    pool = request.match_info["pool"]
    service.require_pool(pool)
    new = body(request, models.BackendCreate)
    state = await service.add_backend(
        pool,
        new.name,
        new.url,
        weight=new.weight,
        admin_state=new.admin_state,
        **write(request),
    )
    return _view(state, status=201)


async def patch_backend(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    pool, backend = _backend(request)
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
    # `local` is fleet mode's scope of the write (admin_api.fleet), not a drain deadline.
    seconds = duration(wait, "wait") if wait is not None and wait != "local" else None
    if seconds is not None and change.admin_state not in ("drain", "maint"):
        raise Problem(
            400,
            "bad-query",
            "Bad query parameter",
            "wait: only with adminState drain or maint (it waits for in-flight requests to end)",
        )
    state = await service.set_backend(
        pool,
        backend,
        admin_state=change.admin_state,
        weight=change.weight,
        force=change.force,
        **write(request),
    )
    if seconds is not None:
        left = await service.wait_drained(pool, backend, seconds)
        if left:
            raise Problem(
                409,
                "drain-timeout",
                "Requests still in flight at the deadline",
                f"{left} request(s) still in flight to {pool}/{backend} after {seconds:g} s "
                "(the admin state change itself was applied)",
                [{"field": "inflight", "message": str(left)}],
            )
        state = service.backend(pool, backend)  # in flight now: none
    return respond(backend_view(state), revision=state.revision)


async def delete_backend(request: web.Request) -> web.Response:
    pool, backend = _backend(request)
    force = request.query.get("force", "false").lower() in ("1", "true", "yes")
    state = await request.app[SERVICE].remove_backend(pool, backend, force=force, **write(request))
    return _view(state)


# Shared


def _backend(request: web.Request) -> tuple[str, str]:
    pool, backend = request.match_info["pool"], request.match_info["backend"]
    request.app[SERVICE].require_backend(pool, backend)  # 404 before the body's 422
    return pool, backend


def _view(state: PoolState, status: int = 200) -> web.Response:
    return respond(pool_view(state), status=status, revision=state.revision)
