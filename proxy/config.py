"""The configuration file: TOML, with `TURNOUT_*` environment overrides, validated in one pass.

Every option can be overridden by an environment variable: `TURNOUT_` + the dotted path with
`__` between levels, e.g. `TURNOUT_LISTEN__PORT=9090` or
`TURNOUT_ROUTES__WEB__WEIGHTS__CANARY=10`. Pools and routes are tables keyed by name (not
arrays) precisely so that such overrides can reach them. Precedence: environment over file.
Order: the file's, whatever the environment says (proxy.config_sources).

Validation happens in two layers, both naming the field: pydantic checks types and ranges
(proxy.config_sections); `router.build` checks what spans fields (a weight naming an unknown
pool, a blue-green route whose active pool is not one of its pools). `load_config` is the one
validation every command uses (`run`, `check-config`, `demo`, a reload): it reports the
problems of both layers together (proxy.config_problems) in a ConfigError naming the file, and
`turnout` exits 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from proxy.config_problems import check_fields
from proxy.config_sections import (
    DEFAULT_BUCKETS,
    DEFAULT_TRUSTED,
    AccessLogConfig,
    AdminConfig,
    BackendConfig,
    DebugConfig,
    DownstreamConfig,
    ForwardedConfig,
    HeaderRuleConfig,
    HealthCheckConfig,
    ListenConfig,
    MetricsConfig,
    OutlierConfig,
    PoolConfig,
    ProcessConfig,
    RouteConfig,
    StateConfig,
    StickyConfig,
    TokenConfig,
    UpstreamConfig,
)
from proxy.config_sources import ENV_DELIMITER, ENV_PREFIX, merged, read_environment, read_file
from router import (
    HeaderRuleSpec,
    PoolSpec,
    RouteSpec,
    Snapshot,
    Spec,
    SpecError,
    StickySpec,
    build_snapshot,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_TRUSTED",
    "AccessLogConfig",
    "AdminConfig",
    "BackendConfig",
    "ConfigError",
    "DebugConfig",
    "DownstreamConfig",
    "ForwardedConfig",
    "HeaderRuleConfig",
    "HealthCheckConfig",
    "ListenConfig",
    "MetricsConfig",
    "OutlierConfig",
    "PoolConfig",
    "ProcessConfig",
    "RouteConfig",
    "Settings",
    "StateConfig",
    "StickyConfig",
    "TokenConfig",
    "UpstreamConfig",
    "load_config",
]


class Settings(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    listen: ListenConfig = ListenConfig()
    process: ProcessConfig = ProcessConfig()
    admin: AdminConfig = AdminConfig()
    state: StateConfig = StateConfig()
    downstream: DownstreamConfig = DownstreamConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    forwarded: ForwardedConfig = ForwardedConfig()
    health: HealthCheckConfig = HealthCheckConfig()
    outlier: OutlierConfig = OutlierConfig()
    metrics: MetricsConfig = MetricsConfig()
    access_log: AccessLogConfig = AccessLogConfig()
    debug: DebugConfig = DebugConfig()
    pools: dict[str, PoolConfig] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)

    def pool_health(self, pool: str) -> HealthCheckConfig:
        """[health] with the pool's overrides."""
        overrides = self.pools[pool].health if pool in self.pools else {}
        return HealthCheckConfig.model_validate({**self.health.model_dump(), **overrides})

    def pool_outlier(self, pool: str) -> OutlierConfig:
        """[outlier] with the pool's overrides."""
        overrides = self.pools[pool].outlier if pool in self.pools else {}
        return OutlierConfig.model_validate({**self.outlier.model_dump(), **overrides})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what it is given: `load_config` reads the file and the environment itself,
        # to keep the file's order (proxy.config_sources).
        return (init_settings,)

    def spec(self) -> Spec:
        """The routing spec this configuration declares (not yet validated across fields)."""
        pools = tuple(
            PoolSpec(
                name=name,
                backends=tuple(backend.spec() for backend in pool.backends),
                panic_threshold=pool.panic_threshold,
                slow_start=pool.slow_start,
            )
            for name, pool in self.pools.items()
        )
        routes = tuple(_route_spec(name, route) for name, route in self.routes.items())
        return Spec(pools=pools, routes=routes)


def _route_spec(name: str, route: RouteConfig) -> RouteSpec:
    return RouteSpec(
        name=name,
        hosts=tuple(route.hosts),
        path_prefix=route.path_prefix,
        mode=route.mode,
        weights=tuple(route.weights.items()),
        colours=tuple(route.pools),
        active=route.active,
        rules=tuple(
            HeaderRuleSpec(
                name=rule.name,
                header=rule.header,
                match=rule.match,
                value=rule.value,
                pool=rule.pool,
            )
            for rule in route.rules
        ),
        sticky=StickySpec(**route.sticky.model_dump()) if route.sticky is not None else None,
        fallback_pool=route.fallback_pool,
        failover=route.failover,
    )


class ConfigError(Exception):
    """An unusable configuration: names the file and every offending field."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid configuration {path}:\n{lines}")


def load_config(path: str | Path) -> tuple[Settings, Snapshot]:
    """Read, validate and compile a configuration file; ConfigError names every problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, ["no such file (turnout never runs on silent defaults)"])
    try:
        data = merged(read_file(path), read_environment(Settings))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [f"not valid TOML: {error}"]) from error
    except SettingsError as error:
        raise ConfigError(path, [f"environment: {error}"]) from error
    # Validated once, from plain data: picklable (worker processes receive it) and free of
    # any further environment lookups.
    checked = check_fields(Settings, data)
    if checked.model is None:
        raise ConfigError(path, checked.problems)
    problems = checked.problems
    try:
        snapshot = build_snapshot(checked.model.spec())
    except SpecError as error:
        problems = problems + [
            f"{where}: {problem.message}"
            for problem in error.problems
            if (where := checked.locate(problem.field)) is not None
        ]
    if problems:
        raise ConfigError(path, problems)
    return checked.model, snapshot
