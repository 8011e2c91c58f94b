"""Request and response bodies of the rollout endpoints (admin_api.rollouts), as pydantic models.

Beside admin_api.models, with the same conventions: camelCase JSON, strict request models that
refuse unknown fields, and the same models behind validation, responses and the OpenAPI
document. A start names only what differs from the route's defaults ([routes.NAME.rollout]
over the built-in ones): every field is optional, and an absent or null field keeps the
default. What a schema can say (ranges, closed choices) is checked here, so a bad value is a
422 naming its field before the control service is asked; what depends on the route (is
`canary` one of its pools?) is the service's to refuse.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, field_validator

from admin_api.models import Model, Request

Seconds = Annotated[float, Field(gt=0, le=86_400)]
"""As the configuration's durations (proxy.config_sections.Seconds): positive, at most a day."""

Percent = Annotated[int, Field(ge=1, le=100)]

StrategyName = Literal["canary", "blue-green"]
PhaseName = Literal["progressing", "paused", "promoted", "aborted"]
OutcomeName = Literal["worse", "not-worse", "inconclusive"]
TestName = Literal["errors", "latency"]
CauseName = Literal[
    "errors", "latency", "no-eligible", "inconclusive", "precheck", "manual", "route-changed"
]


# Parts of requests


class PrecheckRequest(Request):
    """Blue-green: one request sent to every backend of the new colour before the switch."""

    path: str = Field(pattern=r"^/", max_length=2048, examples=["/healthz"])
    method: str = Field("GET", pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=32)
    headers: dict[str, str] = Field(default_factory=dict)
    status: int = Field(200, ge=100, le=599)
    """The status every backend must answer with."""
    body_contains: str | None = None
    timeout: Seconds = 5.0


class JudgeRequest(Request):
    """The judge's settings to change (absent: the route's default)."""

    alpha: float | None = Field(None, gt=0, lt=1)
    """Abort once the evidence reaches 1/alpha (false aborts of a no-worse version <= alpha)."""
    tolerance: float | None = Field(None, ge=1, le=100)
    """Error-rate ratio (new / old) the test is built to detect."""
    latency_tolerance: float | None = Field(None, ge=1, le=100)
    latency_quantile: float | None = Field(None, gt=0, lt=1)
    min_requests: int | None = Field(None, ge=1, le=10_000_000)


# Requests


class RolloutStart(Request):
    """Start a rollout on the route: only what differs from the route's defaults."""

    strategy: StrategyName | None = None
    canary: str | None = Field(None, examples=["canary"])
    """Canary: the new version's pool."""
    to: str | None = None
    """Blue-green: the colour to switch to."""
    steps: list[Percent] | None = Field(None, min_length=1, max_length=100, examples=[[5, 25, 50]])
    """Canary: the new pool's percentage at each step, strictly increasing."""
    step_time: Seconds | None = None
    max_step_time: Seconds | None = None
    on_inconclusive: Literal["pause", "abort"] | None = None
    no_eligible_timeout: Seconds | None = None
    watch: Seconds | None = None
    """Blue-green: how long the new colour is judged after the switch."""
    prechecks: list[PrecheckRequest] | None = Field(None, max_length=32)
    webhook: str | None = Field(None, pattern=r"^https?://\S+$", max_length=2048)
    """Receives a JSON POST on every phase change."""
    judge: JudgeRequest | None = None

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[int] | None) -> list[int] | None:
        if steps is not None and any(b <= a for a, b in pairwise(steps)):
            raise ValueError("steps must be strictly increasing, e.g. [5, 25, 50, 100]")
        return steps


class RolloutCommand(Request):
    """Pause, resume, promote or abort take nothing (the body is optional; any field in it is
    refused)."""


# Responses


class ErrorsEvidence(Model):
    """The error test: the new version's errors against the old version's."""

    evidence: float
    """The e-value: how strongly the counts speak against "no worse" (1 at the start)."""
    threshold: float
    """1/alpha: the rollout aborts when the evidence reaches it."""
    canary_requests: int
    canary_errors: int
    baseline_requests: int
    baseline_errors: int
    canary_rate: float | None
    """Errors per request (0..1); null before any request."""
    baseline_rate: float | None


class LatencyEvidence(Model):
    """The latency test: the share of slow responses, new against old."""

    evidence: float
    threshold: float
    canary_requests: int
    canary_slow: int
    baseline_requests: int
    baseline_slow: int
    canary_rate: float | None
    baseline_rate: float | None
    slow_above: float | None
    """Seconds: slower responses count as slow (null until the old version calibrated it)."""


class EvidenceView(Model):
    errors: ErrorsEvidence
    latency: LatencyEvidence
    step_requests: int
    """Requests the new version answered in the current step."""
    step_baseline_requests: int
    min_requests: int
    """What the new version must answer in a step before it can be called not worse."""


class VerdictView(Model):
    outcome: OutcomeName
    test: TestName | None
    """The test that found the new version worse (null unless worse)."""
    reason: str


class JudgeView(Model):
    alpha: float
    tolerance: float
    latency_tolerance: float
    latency_quantile: float
    min_requests: int


class RolloutView(Model):
    """A route's rollout: where it is, why, and the judge's evidence."""

    route: str
    strategy: StrategyName
    phase: PhaseName
    reason: str
    cause: CauseName | None
    """Why it was aborted (a closed set, as in turnout_rollout_aborts_total); null unless
    aborted."""
    baseline: str
    """Canary: the baseline pool. Blue-green: the colour active when it started."""
    candidate: str
    """Canary: the canary pool. Blue-green: the colour switched to."""
    step: int
    """Canary: index into `steps`. Blue-green: 0 pre-checks, 1 watching the new colour."""
    steps: list[int] | None
    """Canary: the candidate's percentage at each step."""
    weight: int | None
    """Canary: the candidate's percentage at the current step."""
    weights: dict[str, int] | None
    """Canary: the route's weights now."""
    active: str | None
    """Blue-green: the route's active colour now."""
    started: str
    """ISO 8601, UTC."""
    step_started: str
    updated: str
    """When the last transition happened."""
    revision: int
    """The instance's revision (send it in If-Match), as in every other view."""
    transition_revision: int
    """The revision (in the history) of the rollout's last transition."""
    verdict: VerdictView
    evidence: EvidenceView
    judge: JudgeView
    step_time: float
    max_step_time: float
    on_inconclusive: Literal["pause", "abort"]
    no_eligible_timeout: float
    watch: float | None
    """Blue-green: seconds the new colour is judged after the switch."""
    prechecks: int
    """Blue-green: how many pre-check requests each backend of the new colour gets."""
    webhook: str | None
    """Where phase changes are posted: scheme, host and port only (a webhook's path often
    carries its secret)."""


# RolloutList, the answer of GET /v1/rollouts, lists pool rollouts too: it is in
# admin_api.pool_rollout_models, which builds on this module.
