"""Instance endpoints: liveness, readiness, workers, reload, history, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from admin_api import models
from admin_api.context import METRICS, OPENAPI, SERVICE
from admin_api.explain import Refused, explain_request
from admin_api.exposition import render
from admin_api.http import actor, body, respond
from admin_api.openapi import server_url
from admin_api.problems import Problem
from admin_api.views import change_view, workers_view

HISTORY_PAGE = 100


async def healthz(request: web.Request) -> web.Response:
    return respond(models.Status(status="alive"))


async def ready(request: web.Request) -> web.Response:
    state = request.app[SERVICE].readiness()
    view = models.Ready(
        status="ready" if state.ready else state.phase,
        revision=state.revision,
        workers=state.workers,
    )
    return respond(view, status=200 if state.ready else 503)


async def workers(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].workers()
    return respond(workers_view(found), revision=found.revision)


async def reload(request: web.Request) -> web.Response:
    revision = await request.app[SERVICE].reload(actor=actor(request))
    return respond(models.Revision(revision=revision), revision=revision)


async def history(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", HISTORY_PAGE))
    except ValueError:
        raise Problem(
            400, "bad-query", "Bad query parameter", "limit: expected an integer"
        ) from None
    if not 1 <= limit <= 1000:
        raise Problem(400, "bad-query", "Bad query parameter", "limit: 1..1000")
    page = request.app[SERVICE].history(limit)
    changes = [change_view(change) for change in page.changes]
    view = models.HistoryView(revision=page.revision, changes=changes)
    return respond(view, revision=page.revision)


async def openapi(request: web.Request) -> web.Response:
    prepared = request.app[OPENAPI]
    served: dict[str, Any] = dict(prepared)
    served["servers"] = [{"url": server_url(request)}]
    return web.Response(body=orjson.dumps(served), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    await request.app[SERVICE].refresh_counters()  # every worker's counters as of now
    body = render(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def explain(request: web.Request) -> web.Response:
    ask = body(request, models.ExplainRequest)
    rules = request.app[SERVICE].request_rules()
    snapshot = rules.snapshot
    try:
        view = explain_request(
            ask, snapshot, rules.normalize_path, rules.merge_slashes, rules.max_target
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
