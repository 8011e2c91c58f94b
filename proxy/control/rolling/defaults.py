"""A pool's rollout defaults from the configuration file ([pools.NAME.rollout]) over a spec.

Pure: the caller (the service's `pool_rollout_defaults`) builds the base spec (built-in values),
puts the file's section over it here, and a start's own options over that. The file's `hook` and
`hook_url` are one choice: the section holds at most one of them, and a start that names either
replaces both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from proxy.config_rollout import PoolRolloutConfig
from proxy.control.rolling.model import RollSpec
from proxy.control.rollout.defaults import judge

if TYPE_CHECKING:
    from proxy.config import Settings

_PLAIN = (
    "batch",
    "drain_timeout",
    "healthy_deadline",
    "min_healthy_time",
    "keep_old",
    "auto_revert",
    "hook_timeout",
    "webhook",
)
"""Options taken as they are (the others change name or type: `hook` becomes hook_command, a
tuple, and replaces hook_url too; the judge's table is merged)."""


def apply_pool_defaults(base: RollSpec, config: PoolRolloutConfig | None) -> RollSpec:
    """`base` with every option the section sets replaced (the judge's option by option)."""
    if config is None:
        return base
    changes: dict[str, Any] = {
        name: value for name in _PLAIN if (value := getattr(config, name)) is not None
    }
    # One choice: the section's hook replaces the base's, whichever kind either is.
    if config.hook is not None:
        changes.update(hook_command=tuple(config.hook), hook_url=None)
    elif config.hook_url is not None:
        changes.update(hook_command=(), hook_url=config.hook_url)
    if config.judge is not None:
        changes["judge"] = judge(base.judge, config.judge)
    return replace(base, **changes)


def pool_rollout_config(settings: Settings, pool: str) -> PoolRolloutConfig | None:
    """The pool's [pools.NAME.rollout], or None (no such section, or a pool not in the file:
    added at run time)."""
    found = settings.pools.get(pool)
    return found.rollout if found is not None else None
