"""Instance endpoints: liveness, readiness, workers, reload, history, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from admin_api import models
from admin_api.context import CONTROL, METRICS, OPENAPI
from admin_api.explain import Refused, explain_request
from admin_api.http import actor, body, respond
from admin_api.openapi import server_url
from admin_api.problems import Problem
from admin_api.views import change_view
from proxy.config import ConfigError

HISTORY_PAGE = 100


async def healthz(request: web.Request) -> web.Response:
    return respond(models.Status(status="alive"))


async def ready(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    view = models.Ready(
        status="ready" if control.ready else control.phase,
        revision=control.snapshot.revision,
        workers=len(control.supervisor.slots),
    )
    return respond(view, status=200 if control.ready else 503)


async def workers(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    supervisor = control.supervisor
    await supervisor.query_stats()
    view = models.WorkerList(
        revision=control.snapshot.revision,
        crashes=supervisor.crashes,
        workers=[
            models.WorkerView(
                id=slot.worker_id,
                pid=slot.pid,
                serving=slot.live and slot.serving,
                revision=slot.acked,
                crashes=slot.crashes,
                requests=slot.stats.requests if slot.stats else 0,
                connections=slot.stats.connections if slot.stats else 0,
            )
            for slot in supervisor.slots
        ],
    )
    return respond(view, revision=control.snapshot.revision)


async def reload(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    try:
        snapshot = await control.reload(actor=actor(request))
    except ConfigError as error:
        raise Problem(
            400,
            "invalid-config",
            "The configuration file is invalid; nothing was changed",
            f"{error.path}: {len(error.problems)} problem(s)",
            [{"message": problem} for problem in error.problems],
        ) from error
    return respond(models.Revision(revision=snapshot.revision), revision=snapshot.revision)


async def history(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    try:
        limit = int(request.query.get("limit", HISTORY_PAGE))
    except ValueError:
        raise Problem(
            400, "bad-query", "Bad query parameter", "limit: expected an integer"
        ) from None
    if not 1 <= limit <= 1000:
        raise Problem(400, "bad-query", "Bad query parameter", "limit: 1..1000")
    changes = [change_view(change) for change in reversed(control.history[-limit:])]
    view = models.HistoryView(revision=control.snapshot.revision, changes=changes)
    return respond(view, revision=control.snapshot.revision)


async def openapi(request: web.Request) -> web.Response:
    prepared = request.app[OPENAPI]
    served: dict[str, Any] = dict(prepared)
    served["servers"] = [{"url": server_url(request)}]
    return web.Response(body=orjson.dumps(served), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    control = request.app[CONTROL]
    await control.supervisor.query_stats()  # every worker's counters as of now
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def explain(request: web.Request) -> web.Response:
    ask = body(request, models.ExplainRequest)
    control = request.app[CONTROL]
    snapshot, downstream = control.snapshot, control.settings.downstream
    try:
        view = explain_request(
            ask,
            snapshot,
            downstream.normalize_path,
            downstream.merge_slashes,
            downstream.max_header_bytes,
        )
    except Refused as refused:
        error = refused.error
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            f"the proxy answers {error.status} to this request: {error.detail}",
            [{"field": refused.field, "message": error.detail}],
        ) from None
    return respond(view, revision=snapshot.revision)
