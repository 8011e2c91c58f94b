"""The admin HTTP API, served by the control plane on its own listener (127.0.0.1:9901).

Reads are GET; every change is a POST/PUT/PATCH that returns only once every worker routes by
it. Errors are problem documents (admin_api.problems); an invalid request changes nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel

from admin_api.models import SwitchChange, WeightsChange
from admin_api.problems import Problem, not_found, problem_middleware
from admin_api.views import route_view
from proxy.config import ConfigError
from proxy.control import ControlPlane
from router import rollback, switch_active, with_weights

CONTROL = web.AppKey("control", ControlPlane)
MAX_BODY = 64 * 1024

Body = TypeVar("Body", bound=BaseModel)


def create_app(control: ControlPlane) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=MAX_BODY)
    app[CONTROL] = control
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ready", ready)
    app.router.add_post("/v1/reload", reload)
    app.router.add_get("/v1/workers", workers)
    app.router.add_get("/v1/routes", list_routes)
    app.router.add_get("/v1/routes/{route}", get_route)
    app.router.add_put("/v1/routes/{route}/weights", put_weights)
    app.router.add_post("/v1/routes/{route}/switch", post_switch)
    app.router.add_post("/v1/routes/{route}/rollback", post_rollback)
    return app


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request, model: type[Body]) -> Body:
    """The request body as `model`: JSON only, bounded, every field checked."""
    if request.content_type != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "send the body as application/json",
        )
    raw = await request.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Problem(400, "malformed-json", "Malformed JSON", str(error)) from error
    return model.model_validate(data)


def route_spec_or_404(control: ControlPlane, name: str) -> None:
    if control.snapshot.spec.route(name) is None:
        raise not_found("route", name)


# Liveness and readiness


async def healthz(request: web.Request) -> web.Response:
    return json({"status": "alive"})


async def ready(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    body = {
        "status": "ready" if control.ready else control.phase,
        "revision": control.snapshot.revision,
        "workers": len(control.supervisor.slots),
    }
    return json(body, status=200 if control.ready else 503)


async def workers(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    supervisor = control.supervisor
    await supervisor.query_stats()
    return json(
        {
            "revision": control.snapshot.revision,
            "crashes": supervisor.crashes,
            "workers": [
                {
                    "id": slot.worker_id,
                    "pid": slot.pid,
                    "serving": slot.live and slot.serving,
                    "revision": slot.acked,
                    "crashes": slot.crashes,
                    "requests": slot.stats.requests if slot.stats else 0,
                    "connections": slot.stats.connections if slot.stats else 0,
                }
                for slot in supervisor.slots
            ],
        }
    )


async def reload(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    try:
        snapshot = await control.reload()
    except ConfigError as error:
        raise Problem(
            400,
            "invalid-config",
            "The configuration file is invalid; nothing was changed",
            f"{error.path}: {len(error.problems)} problem(s)",
            [{"message": problem} for problem in error.problems],
        ) from error
    return json({"revision": snapshot.revision})


# Routes


async def list_routes(request: web.Request) -> web.Response:
    snapshot = request.app[CONTROL].snapshot
    return json(
        {
            "revision": snapshot.revision,
            "routes": [route_view(spec, snapshot) for spec in snapshot.spec.routes],
        }
    )


async def get_route(request: web.Request) -> web.Response:
    snapshot = request.app[CONTROL].snapshot
    spec = snapshot.spec.route(request.match_info["route"])
    if spec is None:
        raise not_found("route", request.match_info["route"])
    return json(route_view(spec, snapshot))


async def put_weights(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = request.match_info["route"]
    route_spec_or_404(control, name)
    change = await read_body(request, WeightsChange)
    snapshot = await control.apply(lambda current: with_weights(current, name, change.weights))
    return _route_response(snapshot, name)


async def post_switch(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = request.match_info["route"]
    route_spec_or_404(control, name)
    change = await read_body(request, SwitchChange)
    snapshot = await control.apply(lambda current: switch_active(current, name, change.to))
    return _route_response(snapshot, name)


async def post_rollback(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    name = request.match_info["route"]
    route_spec_or_404(control, name)
    snapshot = await control.apply(lambda current: rollback(current, name))
    return _route_response(snapshot, name)


def _route_response(snapshot: Any, name: str) -> web.Response:
    spec = snapshot.spec.route(name)
    assert spec is not None
    return json(route_view(spec, snapshot))
