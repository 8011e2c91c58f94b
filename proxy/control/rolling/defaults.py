"""A pool's rollout defaults from the configuration file ([pools.NAME.rollout]) over a spec.

(A stub until the configuration section lands.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy.control.rolling.model import RollSpec

if TYPE_CHECKING:
    from proxy.config import Settings


def apply_pool_defaults(base: RollSpec, config: Any) -> RollSpec:
    return base


def pool_rollout_config(settings: Settings, pool: str) -> Any:
    return None
