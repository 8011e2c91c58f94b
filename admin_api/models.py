"""Request and response bodies of the admin API, as pydantic models.

The same models validate requests, shape responses and generate the OpenAPI document
(admin_api.openapi), so the three cannot drift. JSON field names are camelCase (`adminState`,
`toRevision`), as Kubernetes and Argo Rollouts users expect.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

AdminStateName = Literal["ready", "drain", "maint"]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Request(Model):
    """A request body: strict types, so `"roll": false` or `"weight": "5"` is refused (422), not
    read as 0 and 5; JSON Schema, which the OpenAPI document promises, has no such coercions."""

    model_config = ConfigDict(strict=True)


# Requests


class WeightsChange(Request):
    """Replace every weight of a weighted route (proportions: 0 = no traffic, not all zero)."""

    weights: dict[str, int] = Field(min_length=1, examples=[{"blue": 90, "canary": 10}])
    force: bool = False
    """Allow giving traffic to a pool that has no eligible (ready and healthy) backend."""


class SwitchChange(Request):
    """Blue-green: make `to` the active colour."""

    to: str
    force: bool = False


class PromoteChange(Request):
    """Argo's promote: the candidate pool to 100 % (named when the route has more than two)."""

    pool: str | None = None
    force: bool = False


class RollbackChange(Request):
    """Back to the previous colour or weights (the body is optional)."""

    force: bool = False


class AbortChange(Request):
    """Argo's abort takes nothing (the body is optional; any field in it is refused)."""


class UndoChange(Request):
    """Restore the route's definition as it was at `toRevision` (a new revision records it)."""

    to_revision: int = Field(ge=1)
    force: bool = False


class BackendCreate(Request):
    """A backend to add to a pool at runtime."""

    name: str
    url: str = Field(examples=["http://10.0.0.7:8080"])
    weight: int = Field(1, ge=0)
    admin_state: AdminStateName = "ready"


class BackendPatch(Request):
    """Change a backend's admin state and/or weight; give at least one."""

    admin_state: AdminStateName | None = None
    weight: int | None = Field(None, ge=0)
    force: bool = False
    """Allow leaving a pool that takes traffic with no eligible backend (its last one)."""


class ExplainRequest(Request):
    """A request to route on paper: nothing is sent anywhere."""

    method: str = "GET"
    host: str = ""
    path: str = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    roll: int | None = Field(None, ge=0, le=2**64 - 1)
    """The random number the proxy would draw (fixes a weighted random choice); default random."""


# Responses


class Status(Model):
    status: str


class Ready(Model):
    status: str
    """`ready`, or the phase when not ready (`starting`, `serving` with a worker restarting,
    `draining`)."""
    revision: int
    workers: int


class Revision(Model):
    revision: int


class Match(Model):
    hosts: list[str]
    path_prefix: str


class Rule(Model):
    name: str
    header: str
    match: str
    value: str | None
    pool: str


class Sticky(Model):
    cookie: str
    issue: bool
    max_age: int
    path: str
    secure: bool
    http_only: bool
    same_site: str


class RouteView(Model):
    name: str
    revision: int
    mode: Literal["weighted", "blue-green"]
    match: Match
    rules: list[Rule]
    fallback_pool: str | None
    weights: dict[str, int] | None = None
    percentages: dict[str, float] | None = None
    """The weights normalised to percent."""
    previous_weights: dict[str, int] | None = None
    sticky: Sticky | None = None
    pools: list[str] | None = None
    """Blue-green: the colours taking part."""
    active: str | None = None
    previous: str | None = None
    observed: dict[str, int]
    """Requests per pool over the last minute, over all workers."""
    observed_percentages: dict[str, float]
    """The same in percent, to 2 decimals, adding up to exactly 100 (largest remainder)."""


class RouteList(Model):
    revision: int
    routes: list[RouteView]


class ProbeView(Model):
    at: str
    """ISO 8601, UTC."""
    ok: bool
    status: int | None
    error: str | None
    duration_ms: float


class CheckView(Model):
    """The active health check's view of a backend."""

    state: Literal["healthy", "unhealthy"]
    consecutive_successes: int
    consecutive_failures: int
    last_probe: ProbeView | None


class EjectionView(Model):
    """Outlier detection took the backend out of rotation."""

    reason: str
    since: str
    until: str
    ejections: int
    """Ejections in a row (each lasts longer)."""


class SlowStartView(Model):
    """A readmitted backend ramping up: its weight grows linearly from a tenth to all of it."""

    progress: float
    """Percent of the ramp done (by time)."""
    since: str
    """ISO 8601, UTC: when it was readmitted."""
    until: str
    """ISO 8601, UTC: when it takes its full weight."""
    remaining_seconds: float


class BackendView(Model):
    name: str
    url: str
    weight: int
    effective_weight: float
    """The weight it is picked by now: `weight`, less while slow start ramps it up."""
    admin_state: AdminStateName
    health: Literal["healthy", "unhealthy"]
    eligible: bool
    """Receives new requests: ready, healthy and a positive weight."""
    inflight: int
    """Requests in flight to it now (open WebSockets included), over all workers."""
    check: CheckView | None = None
    """Active health checking, when the pool has it."""
    ejection: EjectionView | None = None
    slow_start: SlowStartView | None = None
    """While it ramps up after being readmitted (the pool's slow_start)."""


class PoolView(Model):
    name: str
    revision: int
    backends: list[BackendView]
    slow_start: float = 0.0
    """Seconds over which a readmitted backend ramps up to its weight (0: off)."""
    eligible: int
    """How many backends receive new requests."""
    panic: bool = False
    """Fewer healthy backends than panic_threshold: traffic goes to every ready backend."""


class PoolList(Model):
    revision: int
    pools: list[PoolView]


class ChangeView(Model):
    revision: int
    time: str
    """ISO 8601, UTC."""
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class HistoryView(Model):
    revision: int
    changes: list[ChangeView]
    """Newest first."""


class WorkerView(Model):
    id: int
    pid: int
    serving: bool
    revision: int
    crashes: int
    requests: int
    connections: int


class WorkerList(Model):
    revision: int
    crashes: int
    workers: list[WorkerView]


class ExplainBackend(Model):
    name: str
    weight: int
    eligible: bool


class ExplainView(Model):
    """Where the request would go, and why."""

    revision: int
    path: str
    """The path routes matched: normalised as the proxy does ([downstream] normalize_path)."""
    route: str | None
    rule: str
    """header | cookie | weighted | active | no-route"""
    rule_name: str | None
    pool: str | None
    fallback_from: str | None
    bucket: int | None
    issued_cookie: str | None
    """The sticky cookie the proxy would set (a new random one each time)."""
    deterministic: bool
    """False when the answer depends on the random draw (weighted, or a newly issued cookie)."""
    split: dict[str, float] | None
    """A weighted route's set percentages."""
    backends: list[ExplainBackend]
    """The chosen pool's backends; among the eligible ones the least loaded (by weight) wins."""
    why: list[str]


class ProblemError(Model):
    field: str | None = None
    message: str


class ProblemView(Model):
    """RFC 9457 problem details (application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[ProblemError] | None = None
