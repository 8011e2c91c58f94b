"""Pool rollout endpoints: start a pool's rolling replacement, read it, pause, resume, abort.

An adapter like admin_api.rollouts: the request is checked (body by its model, the pool's name,
If-Match) before the control service is asked, and the service's values and refusals are
rendered (admin_api.pool_rollout_views, admin_api.problems). A start names only what differs
from the pool's defaults: the handler takes `pool_rollout_defaults(pool)` and replaces what was
given, so the configuration's [pools.NAME.rollout] and the built-in defaults are applied in one
place, the service, which also refuses a spec that cannot run on the pool.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from admin_api import pool_rollout_models as m
from admin_api.context import SERVICE
from admin_api.http import body, respond, write
from admin_api.pool_rollout_views import pool_rollout_view
from proxy.control.rolling.model import RollSpec
from proxy.control.rolling.status import PoolRolloutState


async def start_pool_rollout(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    pool = _pool(request)
    start = body(request, m.PoolRolloutStart)
    written = write(request)  # a malformed If-Match: 400 before anything is asked
    spec = spec_from(service.pool_rollout_defaults(pool), start)
    state = await service.start_pool_rollout(pool, spec, **written)
    return _view(state, status=201)


async def get_pool_rollout(request: web.Request) -> web.Response:
    pool = _pool(request)
    return _view(request.app[SERVICE].pool_rollout(pool))


async def pause_pool_rollout(request: web.Request) -> web.Response:
    pool = _pool(request)
    return _view(await request.app[SERVICE].pause_pool_rollout(pool, **write(request)))


async def resume_pool_rollout(request: web.Request) -> web.Response:
    pool = _pool(request)
    return _view(await request.app[SERVICE].resume_pool_rollout(pool, **write(request)))


async def abort_pool_rollout(request: web.Request) -> web.Response:
    pool = _pool(request)
    return _view(await request.app[SERVICE].abort_pool_rollout(pool, **write(request)))


def spec_from(defaults: RollSpec, start: m.PoolRolloutStart) -> RollSpec:
    """`defaults` with what the request gave (an absent or null field keeps the default)."""
    given: dict[str, Any] = {}
    for name in _PLAIN:
        value = getattr(start, name)
        if value is not None:
            given[name] = value
    hook = start.hook
    if start.mode == "surge" and (hook is None or (hook.command is None and hook.url is None)):
        # The pool's default hook is for rolling it in place; a surge runs none (and the
        # service refuses one), so asking for a surge sets it aside.
        given["hook_command"], given["hook_url"] = (), None
    if hook is not None:
        # A command or a URL replaces the default hook whole: a default command must not
        # linger beside a URL given now (the service would refuse the pair).
        if hook.command is not None:
            given["hook_command"], given["hook_url"] = tuple(hook.command), None
        elif hook.url is not None:
            given["hook_command"], given["hook_url"] = (), hook.url
        if hook.timeout is not None:
            given["hook_timeout"] = hook.timeout
    if start.new_backends is not None:
        given["new_backends"] = tuple((new.name, new.url) for new in start.new_backends)
    if start.judge is not None:
        judge = start.judge.model_dump(exclude_none=True)  # snake_case: the dataclass's names
        given["judge"] = dataclasses.replace(defaults.judge, **judge)
    return dataclasses.replace(defaults, **given)


_PLAIN = (
    "mode",
    "batch",
    "drain_timeout",
    "healthy_deadline",
    "min_healthy_time",
    "keep_old",
    "auto_revert",
    "webhook",
)
"""PoolRolloutStart's fields that RollSpec takes as they are (same names, same values)."""


def _pool(request: web.Request) -> str:
    name = request.match_info["pool"]
    request.app[SERVICE].require_pool(name)  # 404 before a malformed If-Match's 400
    return name


def _view(state: PoolRolloutState, status: int = 200) -> web.Response:
    return respond(pool_rollout_view(state), status=status, revision=state.revision)
