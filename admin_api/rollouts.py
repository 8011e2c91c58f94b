"""Rollout endpoints: start a route's rollout, read it, pause, resume, promote, abort; list all
(route and pool rollouts: admin_api.pool_rollouts has the pools' own endpoints).

An adapter like admin_api.routes: the request is checked (body by its model, the route's name,
If-Match) before the control service is asked, and the service's values and refusals are
rendered (admin_api.rollout_views, admin_api.problems). A start names only what differs from
the route's defaults: the handler takes `rollout_defaults(route)` and replaces what was given,
so the configuration's [routes.NAME.rollout] and the built-in defaults are applied in one place,
the service.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from admin_api import pool_rollout_models as pm
from admin_api import rollout_models as m
from admin_api.context import SERVICE
from admin_api.http import body, respond, write
from admin_api.pool_rollout_views import pool_rollout_view
from admin_api.rollout_views import rollout_view
from proxy.control.rollout.model import Precheck, RolloutSpec
from proxy.control.rollout.status import RolloutState


async def start_rollout(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    route = _route(request)
    start = body(request, m.RolloutStart)
    written = write(request)  # a malformed If-Match: 400 before anything is asked
    spec = spec_from(service.rollout_defaults(route), start)
    state = await service.start_rollout(route, spec, **written)
    return _view(state, status=201)


async def get_rollout(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    route = _route(request)
    return _view(service.rollout(route))


async def pause_rollout(request: web.Request) -> web.Response:
    route = _route(request)
    return _view(await request.app[SERVICE].pause_rollout(route, **write(request)))


async def resume_rollout(request: web.Request) -> web.Response:
    route = _route(request)
    return _view(await request.app[SERVICE].resume_rollout(route, **write(request)))


async def promote_rollout(request: web.Request) -> web.Response:
    route = _route(request)
    return _view(await request.app[SERVICE].promote_rollout(route, **write(request)))


async def abort_rollout(request: web.Request) -> web.Response:
    route = _route(request)
    return _view(await request.app[SERVICE].abort_rollout(route, **write(request)))


async def list_rollouts(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    routes = service.rollouts()
    pools = service.pool_rollouts()
    # Read together, with no await between: every state carries this same revision.
    revision = service.revision()
    view = pm.RolloutList(
        revision=revision,
        rollouts=[rollout_view(state) for state in routes],
        pool_rollouts=[pool_rollout_view(state) for state in pools],
    )
    return respond(view, revision=revision)


def spec_from(defaults: RolloutSpec, start: m.RolloutStart) -> RolloutSpec:
    """`defaults` with what the request gave (an absent or null field keeps the default)."""
    given: dict[str, Any] = {}
    for name in _PLAIN:
        value = getattr(start, name)
        if value is not None:
            given[name] = value
    if start.steps is not None:
        given["steps"] = tuple(start.steps)
    if start.prechecks is not None:
        given["prechecks"] = tuple(
            Precheck(
                path=check.path,
                method=check.method,
                headers=tuple(check.headers.items()),
                status=check.status,
                body_contains=check.body_contains,
                timeout=check.timeout,
            )
            for check in start.prechecks
        )
    if start.judge is not None:
        judge = start.judge.model_dump(exclude_none=True)  # snake_case: the dataclass's names
        given["judge"] = dataclasses.replace(defaults.judge, **judge)
    return dataclasses.replace(defaults, **given)


_PLAIN = (
    "strategy",
    "canary",
    "to",
    "step_time",
    "max_step_time",
    "on_inconclusive",
    "no_eligible_timeout",
    "watch",
    "webhook",
)
"""RolloutStart's fields that RolloutSpec takes as they are (same names, same values)."""


def _route(request: web.Request) -> str:
    name = request.match_info["route"]
    request.app[SERVICE].require_route(name)  # 404 before a malformed If-Match's 400
    return name


def _view(state: RolloutState, status: int = 200) -> web.Response:
    return respond(rollout_view(state), status=status, revision=state.revision)
