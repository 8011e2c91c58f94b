"""A route's rollout defaults from the configuration file ([routes.NAME.rollout]) over a spec.

Pure: the caller (the service's `rollout_defaults`) builds the base spec (strategy and pool from
the route, built-in values for the rest), puts the file's section over it here, and a start's
own options over that.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from proxy.config_rollout import JudgeConfig, PrecheckConfig, RolloutConfig
from proxy.control.rollout.model import JudgeSettings, Precheck, RolloutSpec

if TYPE_CHECKING:
    from proxy.config import Settings

_PLAIN = (
    "step_time",
    "max_step_time",
    "on_inconclusive",
    "no_eligible_timeout",
    "watch",
    "webhook",
)
"""Options taken as they are (the others change type: lists become tuples, tables values)."""


def apply_defaults(base: RolloutSpec, config: RolloutConfig | None) -> RolloutSpec:
    """`base` with every option the section sets replaced (the judge's option by option)."""
    if config is None:
        return base
    changes: dict[str, Any] = {
        name: value for name in _PLAIN if (value := getattr(config, name)) is not None
    }
    if config.steps is not None:
        changes["steps"] = tuple(config.steps)
    if config.prechecks is not None:
        changes["prechecks"] = tuple(precheck(check) for check in config.prechecks)
    if config.judge is not None:
        changes["judge"] = judge(base.judge, config.judge)
    return replace(base, **changes)


def precheck(config: PrecheckConfig) -> Precheck:
    return Precheck(
        path=config.path,
        method=config.method,
        headers=tuple(config.headers.items()),
        status=config.status,
        body_contains=config.body_contains,
        timeout=config.timeout,
    )


def judge(base: JudgeSettings, config: JudgeConfig) -> JudgeSettings:
    return replace(base, **config.model_dump(exclude_none=True))


def route_rollout_config(settings: Settings, route: str) -> RolloutConfig | None:
    """The route's [routes.NAME.rollout], or None (no such section, or no such route)."""
    found = settings.routes.get(route)
    return found.rollout if found is not None else None
