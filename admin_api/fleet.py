"""The fleet as the admin API shows it (`GET /v1/fleet`), and how far a write waits.

In fleet mode (`[state] backend = "etcd"`) a write answers once every live instance applied it;
`?wait=local` answers once this one has. `wait_scope_middleware` tells the control plane which,
per request, through proxy.fleet.link.WAIT: a context variable, so no command's signature has to
carry an HTTP option. In file mode there is one instance and the scope changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from admin_api.context import SERVICE
from admin_api.http import respond
from admin_api.problems import Problem
from proxy.fleet.link import WAIT

MUTATIONS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def wait_scope_middleware(own_wait: frozenset[tuple[str, str]]) -> web.middleware:  # type: ignore[valid-type]
    """Sets the write's scope; `own_wait`: the (method, path) of endpoints whose `wait` is
    their own option (a drain's deadline), where any other value is theirs to check."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # No route, or not this method: the router's own 404/405 answers, unchanged.
        if request.method in MUTATIONS and request.match_info.http_exception is None:
            wait = request.query.get("wait")
            resource = request.match_info.route.resource
            path = resource.canonical if resource is not None else ""
            if wait not in (None, "local") and (request.method, path) not in own_wait:
                raise Problem(
                    400, "bad-query", "Bad query parameter", "wait: only `local` (fleet mode)"
                )
            WAIT.set("local" if wait == "local" else "fleet")
        return await handler(request)

    return middleware


class FleetInstance(BaseModel):
    model_config = ConfigDict(frozen=True)

    instance: str
    applied: int = Field(description="The revision this instance routes by")
    address: str = Field(description="Its admin API")
    started: float = Field(description="Seconds since the epoch")
    seen: float = Field(description="When it last renewed its lease (seconds since the epoch)")
    self: bool = Field(description="This is the instance that answered")


class FleetView(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: str = Field(description='"file" (one instance) or "etcd" (a fleet)')
    instance: str | None = Field(description="This instance's name in the fleet")
    revision: int = Field(description="The revision this instance routes by")
    prefix: str | None = None
    leader: str | None = Field(None, description="The instance that runs rollouts")
    etcd: str | None = Field(None, description='"reachable" or "unreachable"')
    instances: list[FleetInstance] = Field(description="Every live instance (lease alive)")


async def get_fleet(request: web.Request) -> web.Response:
    found = await request.app[SERVICE].fleet()
    view = FleetView.model_validate(found)
    return respond(view, revision=view.revision)
