"""What a rollout's status shows: its last transition, plus the judge's live evidence."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.control.rollout.judge import Test, Verdict
from proxy.control.rollout.model import Rollout


@dataclass(frozen=True, slots=True)
class Evidence:
    """The judge's running state for one rollout (in the controller's memory, not a revision)."""

    errors: Test
    latency: Test
    slow_above: float | None
    """Seconds: responses slower than this count as slow (None until calibrated)."""
    step_requests: int
    """Requests the new version answered since the current step began."""
    step_baseline_requests: int
    """Requests the old version answered since the current step began (0 for blue-green)."""


@dataclass(frozen=True, slots=True)
class RolloutState:
    """A rollout as the service answers with it."""

    revision: int
    """The instance's current revision (for If-Match)."""
    rollout: Rollout
    evidence: Evidence
    verdict: Verdict
    weights: tuple[tuple[str, int], ...]
    """Canary: the route's weights now. Blue-green: empty."""
    active: str | None
    """Blue-green: the route's active colour now."""
