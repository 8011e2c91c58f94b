"""The admin HTTP API, served by the control plane on its own listener (127.0.0.1:9901).

An adapter: each handler parses and validates HTTP, calls the control service
(proxy.control.ControlService) and renders its values (admin_api.views); the service's refusals
become problem documents (admin_api.problems). No rule lives here.

Every endpoint is declared once in `ENDPOINTS`: method, path, handler, request and response
models. The application, the validation of request bodies and the OpenAPI document
(admin_api.openapi) are all made from that table, so none of them can drift from the others.
Reads are GET (and HEAD for the probes /healthz and /ready); every change is a POST, PUT, PATCH
or DELETE that returns only once every worker routes by it; GET on a path that only changes
things is 405.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from admin_api import (
    events,
    fleet,
    models,
    pool_rollouts,
    pools,
    rollouts,
    routes,
    system,
    ui_routes,
)
from admin_api import pool_rollout_models as pm
from admin_api import rollout_models as rm
from admin_api.auth import Tokens, auth_middleware
from admin_api.context import METRICS, OPENAPI, SERVICE
from admin_api.fleet_metrics import FleetCollector
from admin_api.http import BODY, parse_body
from admin_api.metrics import registry
from admin_api.problems import problem_middleware
from proxy.control import ControlPlane, ControlService

MAX_BODY = 64 * 1024
"""Admin bodies are small; anything larger is refused with 413 before it is read."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    description: str
    example: str | int
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    """JSON Schema of the value, as the handler reads it."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    body_optional: bool = False
    query: tuple[Query, ...] = ()
    public: bool = False
    """Answered without a token even when tokens are configured (probes, the API document)."""
    media: str = "application/json"
    errors: tuple[int, ...] = ()


_WRITE = (400, 401, 404, 409, 412, 413, 415, 422, 503, 504)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/healthz", system.healthz, "Liveness", models.Status, public=True),
    Endpoint(
        "GET",
        "/ready",
        system.ready,
        "Readiness (503 while starting, restarting a worker, or draining)",
        models.Ready,
        public=True,
        errors=(503,),
    ),
    # Load balancers often probe with HEAD (HAProxy's `option httpchk HEAD /ready`, AWS target
    # groups): the same status, no body.
    Endpoint("HEAD", "/healthz", system.healthz, "Liveness, status only", None, public=True),
    Endpoint(
        "HEAD",
        "/ready",
        system.ready,
        "Readiness, status only (503 while starting, restarting a worker, or draining)",
        None,
        public=True,
        errors=(503,),
    ),
    Endpoint(
        "GET",
        "/v1/openapi.json",
        system.openapi,
        "This API's OpenAPI 3.1 document",
        None,
        public=True,
    ),
    Endpoint("GET", "/v1/workers", system.workers, "Worker processes", models.WorkerList),
    Endpoint(
        "GET",
        "/v1/fleet",
        fleet.get_fleet,
        "The fleet sharing this instance's state through etcd: every live instance, the "
        "revision each applied, the rollout leader (file mode: this instance alone)",
        fleet.FleetView,
    ),
    Endpoint(
        "GET",
        "/v1/events/stream",
        events.stream,
        "The instance live as server-sent events: a `state` frame every second (routes, pools, "
        "rollouts, history, workers, per-second series of the last minute, rollout evidence)",
        None,
        media="text/event-stream",
    ),
    Endpoint(
        "GET",
        "/metrics",
        system.metrics,
        "Prometheus metrics of the whole instance (all workers)",
        None,
        media="text/plain; version=0.0.4",
        errors=(401,),
    ),
    Endpoint(
        "POST",
        "/v1/explain",
        system.explain,
        "Route a described request on paper: the decision and why (nothing is sent)",
        models.ExplainView,
        body=models.ExplainRequest,
        errors=(400, 401, 413, 415, 422),
    ),
    Endpoint(
        "POST",
        "/v1/reload",
        system.reload,
        "Re-read the configuration file",
        models.Revision,
        errors=(400, 401),
    ),
    Endpoint(
        "GET",
        "/v1/history",
        system.history,
        "Changes, newest first",
        models.HistoryView,
        query=(
            Query(
                "limit",
                "how many changes (1..1000, default 100)",
                20,
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
            ),
        ),
        errors=(400,),
    ),
    Endpoint("GET", "/v1/routes", routes.list_routes, "Every route", models.RouteList),
    Endpoint(
        "GET", "/v1/routes/{route}", routes.get_route, "One route", models.RouteView, errors=(404,)
    ),
    Endpoint(
        "PUT",
        "/v1/routes/{route}/weights",
        routes.put_weights,
        "Replace a weighted route's weights",
        models.RouteView,
        body=models.WeightsChange,
        errors=_WRITE,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/switch",
        routes.post_switch,
        "Blue-green: switch the active colour",
        models.RouteView,
        body=models.SwitchChange,
        errors=_WRITE,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/rollback",
        routes.post_rollback,
        "Back to the previous colour or weights",
        models.RouteView,
        body=models.RollbackChange,
        body_optional=True,
        errors=_WRITE,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/promote",
        routes.post_promote,
        "Canary to 100 %",
        models.RouteView,
        body=models.PromoteChange,
        body_optional=True,
        errors=_WRITE,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/abort",
        routes.post_abort,
        "Baseline (stable) to 100 %",
        models.RouteView,
        body=models.AbortChange,
        body_optional=True,
        errors=_WRITE,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/undo",
        routes.post_undo,
        "Restore the route as it was at a revision",
        models.RouteView,
        body=models.UndoChange,
        errors=_WRITE,
    ),
    Endpoint(
        "GET",
        "/v1/rollouts",
        rollouts.list_rollouts,
        "Every rollout: each route's and each pool's",
        pm.RolloutList,
    ),
    Endpoint(
        "POST",
        "/v1/routes/{route}/rollout",
        rollouts.start_rollout,
        "Start a rollout (canary steps or a blue-green switch, judged against the old version)",
        rm.RolloutView,
        status=201,
        body=rm.RolloutStart,
        body_optional=True,
        errors=_WRITE,
    ),
    Endpoint(
        "GET",
        "/v1/routes/{route}/rollout",
        rollouts.get_rollout,
        "The route's rollout: phase, step, verdict and evidence",
        rm.RolloutView,
        errors=(404,),
    ),
    *(
        Endpoint(
            "POST",
            f"/v1/routes/{{route}}/rollout/{verb}",
            handler,
            summary,
            rm.RolloutView,
            body=rm.RolloutCommand,
            body_optional=True,
            errors=_WRITE,
        )
        for verb, handler, summary in (
            ("pause", rollouts.pause_rollout, "Pause the rollout where it is"),
            ("resume", rollouts.resume_rollout, "Resume a paused rollout"),
            (
                "promote",
                rollouts.promote_rollout,
                "Skip the remaining steps: the new version to 100 %",
            ),
            ("abort", rollouts.abort_rollout, "Everything back to the old version at once"),
        )
    ),
    Endpoint("GET", "/v1/pools", pools.list_pools, "Every pool and its backends", models.PoolList),
    Endpoint(
        "POST",
        "/v1/pools/{pool}/rollout",
        pool_rollouts.start_pool_rollout,
        "Start a rolling replacement of the pool's backends (in place by a hook, or surge onto"
        " new backends), batch by batch, judged against the backends not yet replaced",
        pm.PoolRolloutView,
        status=201,
        body=pm.PoolRolloutStart,
        body_optional=True,
        errors=_WRITE,
    ),
    Endpoint(
        "GET",
        "/v1/pools/{pool}/rollout",
        pool_rollouts.get_pool_rollout,
        "The pool's rollout: phase, stage, batches, evidence and hook results",
        pm.PoolRolloutView,
        errors=(404,),
    ),
    *(
        Endpoint(
            "POST",
            f"/v1/pools/{{pool}}/rollout/{verb}",
            handler,
            summary,
            pm.PoolRolloutView,
            body=pm.PoolRolloutCommand,
            body_optional=True,
            errors=_WRITE,
        )
        for verb, handler, summary in (
            ("pause", pool_rollouts.pause_pool_rollout, "Pause the pool's rollout where it is"),
            ("resume", pool_rollouts.resume_pool_rollout, "Resume a paused pool rollout"),
            (
                "abort",
                pool_rollouts.abort_pool_rollout,
                "Stop: in place, revert what was replaced, newest first (with autoRevert);"
                " surge, every old backend back in one write",
            ),
        )
    ),
    Endpoint("GET", "/v1/pools/{pool}", pools.get_pool, "One pool", models.PoolView, errors=(404,)),
    Endpoint(
        "POST",
        "/v1/pools/{pool}/backends",
        pools.post_backend,
        "Add a backend",
        models.PoolView,
        status=201,
        body=models.BackendCreate,
        errors=_WRITE,
    ),
    Endpoint(
        "PATCH",
        "/v1/pools/{pool}/backends/{backend}",
        pools.patch_backend,
        "Drain, re-enable or re-weight a backend",
        models.BackendView,
        body=models.BackendPatch,
        query=(
            Query(
                "wait",
                "with adminState drain/maint: return once no request is in flight "
                "(409 with the count left at the deadline); 500ms, 30s, 2m or plain seconds, "
                "at most 600 s. Fleet mode: `local` answers once this instance applied it",
                "30s",
                {"type": "string", "pattern": r"^(local|[0-9]+(\.[0-9]+)?(ms|s|m)?)$"},
            ),
        ),
        errors=_WRITE,
    ),
    Endpoint(
        "DELETE",
        "/v1/pools/{pool}/backends/{backend}",
        pools.delete_backend,
        "Remove a backend (drain it first, or force)",
        models.PoolView,
        query=(
            Query(
                "force",
                "remove even though it is ready or the last eligible backend of its pool:"
                " true, 1 or yes (else false)",
                "true",
            ),
        ),
        errors=_WRITE,
    ),
)


def create_app(control: ControlPlane) -> web.Application:
    """The admin application over `control`'s service: every handler calls the service only."""
    service = ControlService(control)
    tokens = Tokens(list(service.tokens()))
    public = frozenset(
        [*(e.path for e in ENDPOINTS if e.public), *(path for _, path in ui_routes.ROUTES)]
    )
    app = web.Application(
        middlewares=[
            problem_middleware,
            auth_middleware(tokens, public),
            fleet.wait_scope_middleware(
                frozenset(
                    (e.method, e.path) for e in ENDPOINTS if any(q.name == "wait" for q in e.query)
                )
            ),
        ],
        client_max_size=MAX_BODY,
    )
    app[SERVICE] = service
    app[METRICS] = registry(service)
    app[events.EVENTS] = events.Events(service)
    app[METRICS].register(events.EventsCollector(app[events.EVENTS]))
    app[METRICS].register(FleetCollector(service))
    # Before the server waits for its handlers to finish: the streams end here.
    app.on_shutdown.append(_close_events)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, _with_body(endpoint))
    ui_routes.add_routes(app)  # the dashboard: not API, so not in ENDPOINTS nor the document
    from admin_api.openapi import document

    app[OPENAPI] = document(ENDPOINTS)
    return app


async def _close_events(app: web.Application) -> None:
    await app[events.EVENTS].close()


def _with_body(endpoint: Endpoint) -> Handler:
    """The handler, with the declared request body parsed and validated first."""
    model = endpoint.body
    if model is None:
        return endpoint.handler

    async def handler(request: web.Request) -> web.StreamResponse:
        request[BODY] = await parse_body(request, model, endpoint.body_optional)
        return await endpoint.handler(request)

    return handler
