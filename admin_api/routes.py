"""Route endpoints: read a route, shift weights, switch, roll back, promote, abort, undo."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from admin_api import models
from admin_api.context import CONTROL
from admin_api.http import actor, body, if_match, respond
from admin_api.problems import Problem, not_found
from admin_api.views import route_view
from proxy.control import ControlPlane
from router import (
    Snapshot,
    abort,
    promote,
    rollback,
    switch_active,
    with_route,
    with_weights,
)
from router.guards import require_eligible


async def list_routes(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    await control.supervisor.query_stats()  # the observed split as of now, not a second ago
    snapshot = control.snapshot
    routes = [route_view(spec, snapshot, control.telemetry) for spec in snapshot.spec.routes]
    return respond(
        models.RouteList(revision=snapshot.revision, routes=routes), revision=snapshot.revision
    )


async def get_route(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = _name(request, control)
    await control.supervisor.query_stats()
    return _view(control, name, control.snapshot)


async def put_weights(request: web.Request) -> web.Response:
    change = body(request, models.WeightsChange)
    return await _change(
        request,
        "set-weights",
        lambda current, name: with_weights(current, name, change.weights),
        change.force,
    )


async def post_switch(request: web.Request) -> web.Response:
    change = body(request, models.SwitchChange)
    return await _change(
        request,
        "switch",
        lambda current, name: switch_active(current, name, change.to),
        change.force,
    )


async def post_rollback(request: web.Request) -> web.Response:
    change = body(request, models.RollbackChange)
    return await _change(request, "rollback", rollback, change.force)


async def post_promote(request: web.Request) -> web.Response:
    change = body(request, models.PromoteChange)
    return await _change(
        request, "promote", lambda current, name: promote(current, name, change.pool), change.force
    )


async def post_abort(request: web.Request) -> web.Response:
    # Aborting moves traffic back to the baseline: refusing it for an unhealthy baseline would
    # leave it on the canary being aborted, so there is nothing to force.
    return await _change(request, "abort", abort, force=True)


async def post_undo(request: web.Request) -> web.Response:
    change = body(request, models.UndoChange)
    control = request.app[CONTROL]

    def restore(current: Snapshot, name: str) -> Snapshot:
        spec = control.route_at(name, change.to_revision)
        if spec is None:
            raise Problem(
                409,
                "revision-unavailable",
                "That revision cannot be restored",
                f"route {name!r} at revision {change.to_revision} is not in the history "
                "(too old, in the future, or the route did not exist)",
            )
        return with_route(current, spec)

    return await _change(request, f"undo-to-{change.to_revision}", restore, change.force)


# Shared


def _name(request: web.Request, control: ControlPlane) -> str:
    name = request.match_info["route"]
    if control.snapshot.spec.route(name) is None:
        raise not_found("route", name)
    return name


def _view(control: ControlPlane, name: str, snapshot: Snapshot) -> web.Response:
    spec = snapshot.spec.route(name)
    assert spec is not None
    return respond(route_view(spec, snapshot, control.telemetry), revision=snapshot.revision)


async def _change(
    request: web.Request,
    action: str,
    edit: Callable[[Snapshot, str], Snapshot],
    force: bool,
) -> web.Response:
    control = request.app[CONTROL]
    name = _name(request, control)

    def guarded(current: Snapshot) -> Snapshot:
        changed = edit(current, name)
        if not force:
            require_eligible(current, changed)
        return changed

    snapshot = await control.apply(
        guarded,
        actor=actor(request),
        action=action,
        target=f"route/{name}",
        if_match=if_match(request),
    )
    return _view(control, name, snapshot)
