"""Route endpoints: read a route, shift weights, switch, roll back, promote, abort, undo."""

from __future__ import annotations

from aiohttp import web

from admin_api import models
from admin_api.context import SERVICE
from admin_api.http import body, respond, write
from admin_api.views import route_view
from proxy.control.values import RouteState


async def list_routes(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].routes()  # the observed split as of now
    routes = [route_view(state) for state in found.routes]
    return respond(
        models.RouteList(revision=found.revision, routes=routes), revision=found.revision
    )


async def get_route(request: web.Request) -> web.Response:
    return _view(await request.app[SERVICE].route(request.match_info["route"]))


async def put_weights(request: web.Request) -> web.Response:
    change = body(request, models.WeightsChange)
    state = await request.app[SERVICE].set_weights(
        _route(request), change.weights, force=change.force, **write(request)
    )
    return _view(state)


async def post_switch(request: web.Request) -> web.Response:
    change = body(request, models.SwitchChange)
    state = await request.app[SERVICE].switch(
        _route(request), change.to, force=change.force, **write(request)
    )
    return _view(state)


async def post_rollback(request: web.Request) -> web.Response:
    change = body(request, models.RollbackChange)
    state = await request.app[SERVICE].rollback(
        _route(request), force=change.force, **write(request)
    )
    return _view(state)


async def post_promote(request: web.Request) -> web.Response:
    change = body(request, models.PromoteChange)
    state = await request.app[SERVICE].promote(
        _route(request), change.pool, force=change.force, **write(request)
    )
    return _view(state)


async def post_abort(request: web.Request) -> web.Response:
    return _view(await request.app[SERVICE].abort(_route(request), **write(request)))


async def post_undo(request: web.Request) -> web.Response:
    change = body(request, models.UndoChange)
    state = await request.app[SERVICE].undo(
        _route(request), change.to_revision, force=change.force, **write(request)
    )
    return _view(state)


# Shared


def _route(request: web.Request) -> str:
    name = request.match_info["route"]
    request.app[SERVICE].require_route(name)  # 404 before a malformed If-Match's 400
    return name


def _view(state: RouteState) -> web.Response:
    return respond(route_view(state), revision=state.revision)
