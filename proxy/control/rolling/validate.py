"""Whether a pool rollout's spec can run on a pool: every problem named by its field (pure).

(A stub until the full checks land: only what the machine itself would refuse.)"""

from __future__ import annotations

from proxy.control.rolling.model import RollSpec
from router import SpecError
from router.build import Problem
from router.spec import PoolSpec


def check(spec: RollSpec, pool: PoolSpec, *, checked: bool) -> None:
    """SpecError naming every problem; nothing when the spec can run on `pool`."""
    problems: list[Problem] = []
    if spec.batch < 1:
        problems.append(Problem("batch", "must be at least 1"))
    if not checked:
        problems.append(Problem("pool", f"enable [pools.{pool.name}.health]"))
    if problems:
        raise SpecError(problems)
