"""What a pool rollout is: its specification, where it stands, and what one tick saw and asks.

Plain frozen values (no I/O, no asyncio): the control plane keeps and saves a `PoolRollout`,
the machine (`plan.py`) derives the next one from it and from a `Seen`, and returns a `Step`
whose `Action` the controller performs. Times are wall-clock seconds since the epoch, so a
saved rollout means the same after a restart. The phases, the judge's settings and the abort
causes are the route rollouts' (proxy.control.rollout.model), extended where a pool has more
ways to fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from proxy.control.rollout.judge import Verdict
from proxy.control.rollout.model import FINAL, AbortCause, JudgeSettings, Phase
from router.spec import AdminState

Mode = Literal["in-place", "surge"]

HookAction = Literal["replace", "revert"]

Cause = AbortCause | Literal["hook", "drain-timeout", "unhealthy"]
"""The route rollouts' closed set of abort causes, and a pool's own: its hook failed, a backend
kept in-flight requests past `drain_timeout`, or did not pass its checks in time."""

Stage = Literal[
    # in place, per batch
    "draining",
    "replacing",
    "waiting-healthy",
    "holding",
    # in place, undoing a failed rollout one backend at a time, newest first
    "revert-draining",
    "reverting",
    "revert-waiting-healthy",
    # surge ("holding" per batch as in place)
    "gating",
    "keeping-old",
]


@dataclass(frozen=True, slots=True)
class RollSpec:
    mode: Mode
    batch: int = 1
    """Backends replaced (in place) or moved (surge) at a time."""
    drain_timeout: float = 60.0
    """In place: a drained backend still serving requests after this long fails the batch."""
    healthy_deadline: float = 300.0
    """A replaced or new backend not passing its checks after this long fails the batch."""
    min_healthy_time: float = 30.0
    """How long each batch is held, healthy and judged, before the next one."""
    keep_old: float = 600.0
    """Surge: how long the old backends are kept (maint, still probed) after the last batch;
    until then a rollback is one write."""
    auto_revert: bool = True
    """In place: a failure reverts every replaced backend, newest first."""
    hook_command: tuple[str, ...] = ()
    """In place: the replace hook's argv (no shell)."""
    hook_url: str | None = None
    """In place: or a webhook receiving the same as JSON (2xx = done)."""
    hook_timeout: float = 300.0
    new_backends: tuple[tuple[str, str], ...] = ()
    """Surge: the new version's backends, (name, url)."""
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    webhook: str | None = None
    """Receives a JSON POST on every phase change (never blocks the rollout)."""


@dataclass(frozen=True, slots=True)
class PoolRollout:
    """One pool's rollout as its last transition left it."""

    pool: str
    spec: RollSpec
    phase: Phase
    """As a route rollout's; `promoted` means every batch is done."""
    reason: str
    """In words, for people: why the rollout is where it is."""
    batches: tuple[tuple[str, ...], ...]
    """The pool's backends per batch, in order: in place, those replaced; surge, the old ones
    whose traffic moves to `new_batches[i]`."""
    batch: int
    """Index into batches: the batch being worked on."""
    stage: Stage
    stage_started: float
    started: float
    updated: float
    revision: int
    """The revision of the last transition."""
    new_batches: tuple[tuple[str, ...], ...] = ()
    """Surge: the new backends taking each batch's traffic (as many batches as `batches`)."""
    replaced: tuple[str, ...] = ()
    """In place: backends whose replace hook succeeded, in order. Surge: old backends whose
    traffic has moved."""
    reverting: tuple[str, ...] = ()
    """In place, after a failure: the backends still to revert, newest first; the first is the
    one being reverted."""
    failure: str = ""
    """What failed, in words, kept for the final reason while the rollout reverts."""
    cause: Cause | None = None
    """Why it failed or was aborted (the closed set), None until then."""

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    @property
    def current(self) -> tuple[str, ...]:
        """The backends the current stage is about: the one being reverted, else the batch."""
        if self.reverting:
            return self.reverting[:1]
        return self.batches[self.batch] if self.batch < len(self.batches) else ()

    @property
    def new(self) -> tuple[str, ...]:
        """Surge: every new backend."""
        return tuple(name for group in self.new_batches for name in group)

    @property
    def old(self) -> tuple[str, ...]:
        return tuple(name for group in self.batches for name in group)


@dataclass(frozen=True, slots=True)
class HookResult:
    backend: str
    action: HookAction
    ok: bool
    reason: str
    """In words: "exit status 3", "timed out after 300 s", "HTTP 502"."""
    tail: tuple[str, ...] = ()
    """The output's last lines."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What the controller saw at one tick."""

    now: float
    in_flight: int = 0
    """Requests in flight on the backends of `PoolRollout.current`."""
    hooks: tuple[HookResult, ...] = ()
    """The hooks that finished for the backends of `current` since the stage began."""
    healthy: frozenset[str] = frozenset()
    """The pool's backends passing their active checks (healthy_threshold in a row)."""
    verdict: Verdict | None = None
    """The judge on the replaced (moved) backends against the others of the pool; None when
    there is nothing to compare with (the last batch)."""


ActionKind = Literal[
    "none",
    "drain",
    "run-hook",
    "readmit",
    "add-backends",
    "move",
    "keep-old",
    "rollback",
    "remove-old",
]


@dataclass(frozen=True, slots=True)
class Action:
    """What the controller must do for a step: at most one admin write (`states`, `add`,
    `remove`, applied together, acknowledged by every worker) and hooks to start after it."""

    kind: ActionKind
    states: tuple[tuple[str, AdminState], ...] = ()
    """Admin states to set, in one write. A drain may readmit, in the same write, backends the
    step before finished with (capacity stays the same)."""
    add: tuple[tuple[str, str], ...] = ()
    """Surge: backends (name, url) to add to the pool in `maint`."""
    remove: tuple[str, ...] = ()
    hooks: tuple[str, ...] = ()
    """Backends whose hook to run, with `hook`."""
    hook: HookAction | None = None


NONE = Action("none")

Event = Literal["started", "stage", "reverting", "paused", "resumed", "promoted", "aborted"]


@dataclass(frozen=True, slots=True)
class Step:
    rollout: PoolRollout
    """The rollout after the step (its revision is filled in by the write)."""
    event: Event
    action: Action = NONE
