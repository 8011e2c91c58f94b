"""Request and response bodies of the pool rollout endpoints (admin_api.pool_rollouts).

The conventions of admin_api.rollout_models: camelCase JSON, strict request models that refuse
unknown fields, the same models behind validation, responses and the OpenAPI document. A start
names only what differs from the pool's defaults ([pools.NAME.rollout] over the built-in ones):
every field is optional, an absent or null field keeps the default. What a schema can say
(ranges, closed choices, a hook that is a command *or* a URL, new backends named once) is
checked here, so a bad value is a 422 naming its field before the control service is asked;
what depends on the pool or on the defaults (a new backend's name already in the pool, surge
without new backends once the defaults are applied) is the service's to refuse.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from admin_api.models import Model, Request
from admin_api.rollout_models import JudgeRequest, PhaseName, RolloutView, Seconds, VerdictView

ModeName = Literal["in-place", "surge"]
StageName = Literal[
    "draining",
    "replacing",
    "waiting-healthy",
    "holding",
    "revert-draining",
    "reverting",
    "revert-waiting-healthy",
    "gating",
    "keeping-old",
]
PoolCauseName = Literal[
    "errors",
    "latency",
    "no-eligible",
    "inconclusive",
    "precheck",
    "manual",
    "route-changed",
    "hook",
    "drain-timeout",
    "unhealthy",
]
HookActionName = Literal["replace", "revert"]

URL_PATTERN = r"^https?://\S+$"

# The bounds keep a body that breaks one of them under the 64 KiB every body is held to
# (admin_api.app.MAX_BODY): it is refused 422 naming its field, not 413 for its size.
Argument = Annotated[str, Field(max_length=900)]

# Parts of requests


class HookRequest(Request):
    """In place: what replaces each backend, a command (argv, run without a shell) or a
    webhook URL. Giving either replaces the default hook; giving only `timeout` keeps it."""

    command: list[Argument] | None = Field(
        None, min_length=1, max_length=64, examples=[["./deploy.sh", "--quiet"]]
    )
    url: str | None = Field(None, pattern=URL_PATTERN, max_length=2048)
    timeout: Seconds | None = None
    """Seconds the hook may take; a command still running then is killed."""

    @model_validator(mode="after")
    def _one_hook(self) -> Self:
        if self.command is not None and self.url is not None:
            raise ValueError("give a command or a url, not both")
        return self


class NewBackendRequest(Request):
    """Surge: one backend of the new version, added to the pool in maint."""

    name: str = Field(min_length=1, max_length=63, examples=["blue-new-1"])
    url: str = Field(pattern=URL_PATTERN, max_length=500, examples=["http://10.0.0.8:8080"])


# Requests


class PoolRolloutStart(Request):
    """Start a rollout on the pool: only what differs from the pool's defaults."""

    mode: ModeName | None = None
    """In place (a hook replaces the program behind each backend) or surge (new backends)."""
    batch: int | None = Field(None, ge=1, le=10_000)
    """Backends replaced (surge: moved) at a time."""
    drain_timeout: Seconds | None = None
    healthy_deadline: Seconds | None = None
    min_healthy_time: Seconds | None = None
    """How long each batch is held, healthy and judged, before the next."""
    keep_old: Annotated[float, Field(ge=0, le=86_400)] | None = None
    """Surge: how long the old backends are kept after the last batch (rollback is one write
    until then); 0 removes them at once."""
    auto_revert: bool | None = None
    """In place: a failure reverts every replaced backend, newest first."""
    hook: HookRequest | None = None
    new_backends: list[NewBackendRequest] | None = Field(None, min_length=1, max_length=100)
    judge: JudgeRequest | None = None
    webhook: str | None = Field(None, pattern=URL_PATTERN, max_length=2048)
    """Receives a JSON POST on every phase change."""

    @field_validator("new_backends")
    @classmethod
    def _named_once(
        cls, backends: list[NewBackendRequest] | None
    ) -> list[NewBackendRequest] | None:
        names = [backend.name for backend in backends or ()]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"each new backend needs a name of its own: {', '.join(twice)}")
        return backends


class PoolRolloutCommand(Request):
    """Pause, resume or abort take nothing (the body is optional; any field in it is
    refused)."""


# Responses


class PoolEvidenceView(Model):
    """The error test: the replaced (surge: new) backends' errors against the others'."""

    evidence: float
    """The e-value: how strongly the counts speak against "no worse" (1 at the start)."""
    threshold: float
    """1/alpha: the rollout fails when the evidence reaches it."""
    new_requests: int
    new_errors: int
    old_requests: int
    old_errors: int


class HookResultView(Model):
    backend: str
    action: HookActionName
    ok: bool
    reason: str
    """In words: "exit status 3", "timed out after 300 s", "webhook answered 502"."""
    tail: list[str]
    """The output's last lines (a webhook: its answer's first lines)."""


class HookView(Model):
    command: list[str] | None
    url: str | None
    """Scheme, host and port only (a webhook's path often carries its secret)."""
    timeout: float


class NewBackendView(Model):
    name: str
    url: str


class PoolRolloutSpecView(Model):
    batch: int
    drain_timeout: float
    healthy_deadline: float
    min_healthy_time: float
    keep_old: float
    auto_revert: bool
    hook: HookView | None
    """In place: the replace hook; null for surge."""
    new_backends: list[NewBackendView]
    webhook: str | None
    """Where phase changes are posted: scheme, host and port only."""


class PoolRolloutView(Model):
    """A pool's rollout: where it is, why, the judge's evidence and the hooks' results."""

    pool: str
    mode: ModeName
    phase: PhaseName
    stage: StageName
    reason: str
    cause: PoolCauseName | None
    """Why it failed or was aborted (a closed set); null until then."""
    batch: int
    """The current batch, counted from 1."""
    batches: list[list[str]]
    """The pool's backends per batch: in place, those replaced; surge, the old ones whose
    traffic moves to `newBatches` of the same index."""
    new_batches: list[list[str]]
    """Surge: the new backends taking each batch's traffic (empty in place)."""
    replaced: list[str]
    """In place: backends whose replace hook succeeded. Surge: old backends whose traffic has
    moved."""
    reverting: list[str]
    """In place, after a failure: the backends still to revert, newest first."""
    started: str
    """ISO 8601, UTC."""
    stage_started: str
    updated: str
    """When the last transition happened."""
    revision: int
    """The instance's revision (send it in If-Match), as in every other view."""
    transition_revision: int
    """The revision (in the history) of the rollout's last transition."""
    verdict: VerdictView | None
    """The judge's latest; null while nothing has been compared."""
    evidence: PoolEvidenceView
    hooks: list[HookResultView]
    """This rollout's hook results, oldest first (kept in memory: a restart forgets them)."""
    spec: PoolRolloutSpecView


class RolloutList(Model):
    """Every rollout of the instance, route and pool ones."""

    revision: int
    rollouts: list[RolloutView]
    """Every route's rollout, running or finished, by route name."""
    pool_rollouts: list[PoolRolloutView]
    """Every pool's rollout, running or finished, by pool name."""
