"""The sections of the configuration file, one model each, and the pools and routes in it.

Each model checks its own fields (types, ranges, formats) and names the field it refuses;
what spans fields (a weight naming an unknown pool) is `router.build`'s, and `proxy.config`
puts the two together. Every section forbids unknown options: a misspelt one is an error,
never silently ignored.
"""

from __future__ import annotations

import ipaddress
import os
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from proxy.config_fleet import EtcdConfig
from proxy.config_rollout import PoolRolloutConfig, RolloutConfig
from proxy.config_types import Seconds
from proxy.config_types import Section as _Section
from router import AdminState, BackendSpec, Failover, MatchKind, Mode
from router.spec import SameSite


class ListenConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    backlog: int = Field(2048, ge=1)


class ProcessConfig(_Section):
    """Worker processes and lifecycle."""

    workers: int | Literal["auto"] = 1
    """Data-plane processes; "auto" = one per core."""
    shutdown_timeout: Seconds = 30.0
    """SIGTERM: how long in-flight requests may take to finish before the exit is forced."""
    ack_timeout: Seconds = 5.0
    """A change waits this long for every worker to apply it; a worker that does not is restarted."""

    @field_validator("workers")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError('must be 1..256 or "auto"')
        return value

    def worker_count(self) -> int:
        return (os.cpu_count() or 1) if self.workers == "auto" else int(self.workers)


class TokenConfig(_Section):
    """A bearer token for the admin API; its `name` is recorded in the history."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
    token: SecretStr | None = None
    """The token itself (prefer token_env: keep secrets out of files)."""
    token_env: str | None = None
    """The name of an environment variable holding the token, read when the config loads."""
    role: Literal["read", "write"] = "write"
    """`read`: GET, HEAD and OPTIONS only (a dashboard on a wall, a script that watches);
    `write` (the default, as before roles existed): everything."""

    @model_validator(mode="after")
    def _one_source(self) -> TokenConfig:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("give exactly one of token and token_env")
        return self

    def secret(self) -> str:
        if self.token is not None:
            return self.token.get_secret_value()
        assert self.token_env is not None
        return os.environ.get(self.token_env, "")


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class AdminConfig(_Section):
    """The admin HTTP API (its own listener, loopback by default, like Envoy's 9901)."""

    # Declared before `host`, whose check reads them (pydantic validates in this order).
    tokens: list[TokenConfig] = Field(default_factory=list)
    """Bearer tokens. With none, the API binds only to loopback and asks for no token."""
    host: str = "127.0.0.1"
    port: int = Field(9901, ge=0, le=65535)

    @field_validator("host")
    @classmethod
    def _loopback_without_tokens(cls, value: str, info: ValidationInfo) -> str:
        # Without tokens the API answers anyone who reaches it. Absent `tokens` means they
        # were given but are invalid: that is their error, not this one.
        if "tokens" in info.data and not info.data["tokens"] and not is_loopback(value):
            raise ValueError(
                f"{value} refused: without [[admin.tokens]] the admin API binds only to loopback"
            )
        return value

    @model_validator(mode="after")
    def _tokens(self) -> AdminConfig:
        names = [token.name for token in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("token names must be unique")
        for token in self.tokens:
            if len(token.secret()) < 16:
                where = f"${token.token_env}" if token.token_env else "token"
                raise ValueError(f"token {token.name!r}: {where} must be at least 16 characters")
        return self


class StateConfig(_Section):
    """Where runtime changes are saved so they survive a restart."""

    persist: bool = True
    file: Path | None = None
    """Default: next to the configuration file, `<name>.state.json`."""
    backend: Literal["file", "etcd"] = "file"
    """`file`: this instance's own state file; `etcd`: a fleet's state shared through
    [state.etcd] (issue 17)."""
    etcd: EtcdConfig = EtcdConfig()


class DownstreamConfig(_Section):
    """Limits on what clients may send, and how long they may take."""

    header_timeout: Seconds = 10.0
    keepalive_timeout: Seconds = 75.0
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    max_headers: int = Field(100, ge=8, le=1000)
    # Envoy's names for the same switches. On by default here (off in Envoy): a path prefix
    # only separates routes if turnout reads a path as the backend will (router/paths.py).
    normalize_path: bool = True
    merge_slashes: bool = False


class UpstreamConfig(_Section):
    """How turnout talks to backends."""

    connect_timeout: Seconds = 5.0
    read_timeout: Seconds = 30.0
    # Idle connections kept per backend, per worker. Generous on purpose: a burst beyond it
    # closes the excess after use, and at 1,000 busy clients a cap of 256 churned thousands of
    # connections a second into TIME_WAIT until connects stalled for seconds (c1000 bench).
    keepalive_per_backend: int = Field(1024, ge=0)
    keepalive_idle_timeout: Seconds = 30.0
    retries: int = Field(1, ge=0, le=5)
    max_response_header_bytes: int = Field(64 * 1024, ge=1024, le=1024 * 1024)
    tunnel_idle_timeout: Seconds = 3600.0


DEFAULT_TRUSTED = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
]


class ForwardedConfig(_Section):
    trusted_proxies: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUSTED))

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as error:
                raise ValueError(f"{network!r} is not an address or CIDR network") from error
        return value


class BackendConfig(_Section):
    name: str
    url: str
    weight: int = Field(1, ge=0)
    admin_state: AdminState = "ready"

    @field_validator("url")
    @classmethod
    def _http_origin(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "http":
            raise ValueError("must be http://host:port (TLS to backends is not supported)")
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be http://host:port, without a path")
        try:
            _ = parts.port
        except ValueError as error:
            raise ValueError(str(error)) from error
        return value

    def spec(self) -> BackendSpec:
        parts = urlsplit(self.url)
        assert parts.hostname is not None  # checked by the validator
        return BackendSpec(
            name=self.name,
            host=parts.hostname,
            port=parts.port or 80,
            weight=self.weight,
            admin_state=self.admin_state,
        )


class HealthCheckConfig(_Section):
    """Active health checks: the control plane probes every backend (once per instance)."""

    enabled: bool = False
    method: str = Field("GET", pattern=r"^[A-Z]+$")
    path: str = Field("/healthz", pattern=r"^/")
    host: str | None = None
    """Host header of the probe; default: the backend's host:port."""
    interval: Seconds = 5.0
    jitter: float = Field(0.2, ge=0, le=0.9)
    """Each wait is interval x (1 +/- jitter), so backends are not probed in lockstep."""
    timeout: Seconds = 2.0
    expected_statuses: str = Field("200-399", pattern=r"^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$")
    expect_body: str | None = None
    """A substring the response body must contain."""
    unhealthy_threshold: int = Field(3, ge=1, le=100)
    healthy_threshold: int = Field(2, ge=1, le=100)
    initial_state: Literal["healthy", "unhealthy"] = "healthy"
    """A backend not probed yet: `healthy` until proven otherwise, or `unhealthy` until its
    first successful probe."""

    def statuses(self) -> list[tuple[int, int]]:
        ranges = []
        for part in self.expected_statuses.split(","):
            low, _, high = part.partition("-")
            ranges.append((int(low), int(high or low)))
        return ranges


class OutlierConfig(_Section):
    """Passive checks: eject a backend that keeps failing real requests."""

    enabled: bool = False
    consecutive_5xx: int = Field(5, ge=1, le=1000)
    consecutive_gateway_failures: int = Field(5, ge=1, le=1000)
    """Connect failures and timeouts in a row."""
    base_ejection_time: Seconds = 30.0
    """The n-th ejection in a row lasts n times this (up to max_ejection_time)."""
    max_ejection_time: Seconds = 300.0
    max_ejection_percent: int = Field(10, ge=0, le=100)
    """At most this share of a pool's backends ejected at once, rounded down (exactly: with
    10 % and fewer than 10 backends, none is ever ejected)."""


DEFAULT_BUCKETS = [
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
]


class MetricsConfig(_Section):
    """Prometheus metrics, served at GET /metrics on the admin listener."""

    buckets: list[float] = Field(default_factory=lambda: list(DEFAULT_BUCKETS), min_length=1)
    """Upper bounds (seconds) of the request duration histogram's buckets."""

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(b <= a for a, b in pairwise(value)) or value[0] <= 0:
            raise ValueError("must be positive and strictly increasing")
        return value


class AccessLogConfig(_Section):
    """One JSON line per request, written by each worker."""

    enabled: bool = False
    file: Path | None = None
    """Append to this file; default: standard output."""
    sample: float = Field(1.0, gt=0, le=1)
    """The share of requests logged (1: all)."""
    query: bool = False
    """Log the query string too (off: queries often carry tokens)."""


class DebugConfig(_Section):
    decision_header: bool = False
    """Add `x-turnout-decision: route=... rule=... pool=... backend=... bucket=...` to every
    response. For debugging only: it tells clients how traffic is split."""


class PoolConfig(_Section):
    backends: list[BackendConfig] = Field(default_factory=list)
    panic_threshold: int = Field(0, ge=0, le=100)
    slow_start: float = Field(0.0, ge=0, le=3600)
    health: dict[str, Any] = Field(default_factory=dict)
    """Overrides of [health] for this pool."""
    outlier: dict[str, Any] = Field(default_factory=dict)
    """Overrides of [outlier] for this pool."""
    rollout: PoolRolloutConfig | None = None
    """Defaults of this pool's rolling replacements ([pools.NAME.rollout]); a start may
    override each."""

    # Checked against the defaults: no option of either section depends on another, so an
    # override valid here is valid over any valid [health] or [outlier]. A nested model's
    # ValidationError keeps its location: pools.NAME.health.interval.
    @field_validator("health")
    @classmethod
    def _health_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        HealthCheckConfig.model_validate(value)
        return value

    @field_validator("outlier")
    @classmethod
    def _outlier_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        OutlierConfig.model_validate(value)
        return value


class HeaderRuleConfig(_Section):
    name: str
    header: str
    match: MatchKind = "exact"
    value: str | None = None
    pool: str


class StickyConfig(_Section):
    cookie: str = "turnout-id"
    issue: bool = True
    max_age: int = Field(30 * 24 * 3600, ge=0)
    path: str = "/"
    secure: bool = False
    http_only: bool = True
    same_site: SameSite = "Lax"
    salt: str = ""


class RouteConfig(_Section):
    hosts: list[str] = Field(default_factory=list)
    path_prefix: str = "/"
    mode: Mode = "weighted"
    weights: dict[str, int] = Field(default_factory=dict)
    pools: list[str] = Field(default_factory=list)
    active: str | None = None
    rules: list[HeaderRuleConfig] = Field(default_factory=list)
    sticky: StickyConfig | None = None
    fallback_pool: str | None = None
    failover: Failover = "auto"
    rollout: RolloutConfig | None = None
    """Defaults of this route's rollouts ([routes.NAME.rollout]); a start may override each."""
