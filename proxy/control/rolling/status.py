"""What a pool rollout's status shows: its last transition, plus the controller's live view
(the judge's evidence and the hooks' results, in memory only)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.control.rolling.model import HookResult, PoolRollout
from proxy.control.rollout.judge import Test, Verdict


@dataclass(frozen=True, slots=True)
class PoolRolloutState:
    """A pool rollout as the service answers with it."""

    revision: int
    """The instance's current revision (for If-Match)."""
    rollout: PoolRollout
    verdict: Verdict | None
    """The judge's latest verdict; None while nothing has been compared."""
    errors: Test
    """The error test's running state."""
    new_requests: int
    """Judged requests answered by the replaced (surge: new) backends."""
    new_errors: int
    old_requests: int
    """Judged requests answered by the backends not yet replaced, at the same times."""
    old_errors: int
    hooks: tuple[HookResult, ...]
    """This rollout's hook results so far, oldest first (lost on a restart)."""
    threshold: float
    """The evidence at which the judge calls the new version worse (1/alpha)."""
