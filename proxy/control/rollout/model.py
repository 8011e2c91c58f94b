"""What a rollout is: its specification, its phase and step, and the judge's settings.

Plain frozen values (no I/O, no asyncio): the control plane keeps and saves them, the machine
derives new ones from old ones, and adapters render them. Times are wall-clock seconds since the
epoch, so that a saved rollout still means the same after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Phase = Literal["progressing", "paused", "promoted", "aborted"]
"""Argo Rollouts' vocabulary: `paused` is by a person or waiting for one; `promoted` and
`aborted` are final."""

FINAL: tuple[Phase, ...] = ("promoted", "aborted")

Strategy = Literal["canary", "blue-green"]

OnInconclusive = Literal["pause", "abort"]

AbortCause = Literal[
    "errors", "latency", "no-eligible", "inconclusive", "precheck", "manual", "route-changed"
]
"""The closed set of reasons an abort is counted under (turnout_rollout_aborts_total)."""

ACTOR = "rollout"
"""The history's actor for the controller's own transitions."""


@dataclass(frozen=True, slots=True)
class Precheck:
    """Blue-green: one request sent to every backend of the new colour before the switch."""

    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 200
    body_contains: str | None = None
    timeout: float = 5.0


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    alpha: float = 0.01
    """Abort when the evidence reaches 1/alpha: the false-abort probability of a canary that
    is no worse stays at most alpha, however often the evidence is looked at."""
    tolerance: float = 1.5
    """Error-rate ratio (new / old) the test is built to detect: its alternatives start
    there. The null it rejects is "the new version's rate is no higher than the old one's"."""
    latency_tolerance: float = 1.5
    """The same for the share of slow responses."""
    latency_quantile: float = 0.9
    """A response is slow above the old version's latency at this quantile (a histogram
    bound, fixed once the old version has answered enough requests)."""
    min_requests: int = 300
    """Requests the new version must answer in a step before the judge may call it not worse."""


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    strategy: Strategy
    canary: str | None = None
    """Canary: the new version's pool (the route's first pool is the baseline)."""
    to: str | None = None
    """Blue-green: the colour to switch to."""
    steps: tuple[int, ...] = (5, 25, 50, 100)
    """Canary: the new pool's percentage at each step (Argo's setWeight)."""
    step_time: float = 60.0
    """Each step lasts at least this long (seconds)."""
    max_step_time: float = 600.0
    """A step still inconclusive (too little traffic) after this long pauses or aborts."""
    on_inconclusive: OnInconclusive = "pause"
    no_eligible_timeout: float = 30.0
    """The new version with no eligible backend for this long aborts the rollout."""
    watch: float = 300.0
    """Blue-green: how long the new colour is judged after the switch."""
    prechecks: tuple[Precheck, ...] = ()
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    webhook: str | None = None
    """Receives a JSON POST on every phase change (never blocks the rollout)."""


@dataclass(frozen=True, slots=True)
class Reference:
    """Blue-green: what the old colour did over the minute before the switch."""

    requests: int
    errors: int
    buckets: tuple[int, ...]
    """Its latency histogram (per bucket, not cumulative), with the workers' bounds."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """One route's rollout as its last transition left it."""

    route: str
    spec: RolloutSpec
    baseline: str
    """Canary: the baseline pool. Blue-green: the colour active when the rollout started."""
    new: str
    """Canary: the canary pool. Blue-green: the colour being switched to."""
    phase: Phase
    reason: str
    """In words, for people: why the rollout is where it is."""
    step: int
    """Canary: index into spec.steps. Blue-green: 0 pre-checks, 1 watching the new colour."""
    started: float
    step_started: float
    updated: float
    revision: int
    """The revision of the last transition."""
    cause: AbortCause | None = None
    """Why it was aborted (the closed set), None unless aborted."""
    reference: Reference | None = None
    """Blue-green: the old colour's figures just before the switch."""

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    @property
    def weight(self) -> int | None:
        """Canary: the new pool's percentage at the current step."""
        if self.spec.strategy != "canary" or not self.spec.steps:
            return None
        return self.spec.steps[min(self.step, len(self.spec.steps) - 1)]
