"""The plain values the control service answers with: frozen, typed, and nothing live.

Why frozen dataclasses and not admin_api's pydantic view models: those are the HTTP API's wire
format (camelCase aliases, rounding, ISO times), and the service sits below every adapter (the
admin API, a rollout controller inside proxy/, a future dashboard); depending on admin_api from
proxy/ would make the two packages import each other. So the service hands out values of its own
vocabulary (router's specs, counts, wall-clock seconds) and each adapter renders them. A value
is a copy taken at one moment under no lock, so a reader can keep it as long as it likes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from proxy.metrics import BackendReport, Sum
from proxy.state import Change
from router import AdminState, Health, PoolSpec, RouteSpec, Snapshot

__all__ = [
    "BackendState",
    "Change",
    "CheckState",
    "EjectionState",
    "HealthCounters",
    "HistoryPage",
    "InstanceState",
    "PoolState",
    "Pools",
    "ProbeState",
    "Readiness",
    "RequestRules",
    "RouteCounters",
    "RouteCounts",
    "RouteState",
    "Routes",
    "SlowStartState",
    "WorkerState",
    "Workers",
]

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RouteState:
    """A route as it routes now, and the requests per pool it answered over the last minute."""

    revision: int
    spec: RouteSpec
    observed: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Routes:
    revision: int
    routes: tuple[RouteState, ...]


@dataclass(frozen=True, slots=True)
class ProbeState:
    at: float
    """Wall time (seconds since the epoch)."""
    ok: bool
    status: int | None
    error: str | None
    duration: float
    """Seconds."""


@dataclass(frozen=True, slots=True)
class CheckState:
    """What the active health checks say of a backend whose pool has them on."""

    state: Health
    successes: int
    failures: int
    last: ProbeState | None


@dataclass(frozen=True, slots=True)
class EjectionState:
    """A backend taken out of rotation by outlier detection; times are wall times."""

    reason: str
    since: float
    until: float
    ejections: int


@dataclass(frozen=True, slots=True)
class SlowStartState:
    """A readmitted backend ramping up; `progress` 0..1, times are wall times."""

    progress: float
    since: float
    until: float
    remaining: float


@dataclass(frozen=True, slots=True)
class BackendState:
    revision: int
    """Of the snapshot this state was read from."""
    name: str
    url: str
    weight: int
    effective_weight: float
    """The weight it is picked by now: `weight`, less while slow start ramps it up."""
    admin_state: AdminState
    health: Health
    eligible: bool
    inflight: int
    check: CheckState | None
    ejection: EjectionState | None
    slow_start: SlowStartState | None


@dataclass(frozen=True, slots=True)
class PoolState:
    revision: int
    spec: PoolSpec
    backends: tuple[BackendState, ...]
    eligible: int
    panic: bool


@dataclass(frozen=True, slots=True)
class Pools:
    revision: int
    pools: tuple[PoolState, ...]


@dataclass(frozen=True, slots=True)
class WorkerState:
    id: int
    pid: int
    live: bool
    serving: bool
    revision: int
    """The revision it acknowledged last."""
    crashes: int
    requests: int
    connections: int


@dataclass(frozen=True, slots=True)
class Workers:
    revision: int
    crashes: int
    workers: tuple[WorkerState, ...]


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    """Serving, and every worker routes by the current revision."""
    phase: str
    revision: int
    workers: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    revision: int
    changes: tuple[Change, ...]
    """Newest first."""


@dataclass(frozen=True, slots=True)
class RequestRules:
    """The snapshot and how the proxy reads a request line, to route a request on paper."""

    snapshot: Snapshot
    normalize_path: bool
    merge_slashes: bool
    max_target: int


@dataclass(frozen=True, slots=True)
class HealthCounters:
    ejected_by_probes: int
    ejected_by_outliers: int
    checked: bool
    probes_ok: int
    probes_failed: int


@dataclass(frozen=True, slots=True)
class InstanceState:
    """Everything the instance's metrics are made of, as of the workers' last reports."""

    snapshot: Snapshot
    buckets: tuple[float, ...]
    """Upper bounds of the request duration histogram (without +Inf)."""
    routes: Mapping[Key, Sum]
    """(route, pool) -> what its requests did, over the life of the instance."""
    backends: Mapping[Key, BackendReport]
    health: Mapping[Key, HealthCounters]
    workers: tuple[WorkerState, ...]
    crashes: int


@dataclass(frozen=True, slots=True)
class RouteCounts:
    """One (route, pool)'s requests over the life of the instance (every worker, dead ones
    included, so they only grow)."""

    requests: int
    errors: int
    """Answered with a status >= 500."""
    buckets: tuple[int, ...]
    """Requests per duration bucket (not cumulative); the last one is +Inf."""


@dataclass(frozen=True, slots=True)
class RouteCounters:
    """The per-(route, pool) counters a time series is made of, as of the workers' last
    reports."""

    bounds: tuple[float, ...]
    """Upper bounds of the duration buckets, in seconds (without +Inf)."""
    routes: Mapping[Key, RouteCounts]


@dataclass(frozen=True, slots=True)
class FleetCounters:
    """Fleet mode's figures for /metrics (None from the service in file mode)."""

    leader: bool
    write_conflicts: int
    etcd_unavailable: int
    write_lagging: int
