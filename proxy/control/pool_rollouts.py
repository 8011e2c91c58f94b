"""The control service's pool rollout commands and queries (a part of ControlService).

As the route rollouts' (proxy.control.rollouts): a person's command is a step of the pure
machine (proxy.control.rolling.plan), written through the same write path as the controller's
own steps, under the person's name in the history. A command that asks for what already is
(pausing a paused rollout) changes nothing and makes no revision; one that does not fit the
phase is refused with RolloutConflict.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from proxy.control.errors import NotFound, RolloutConflict
from proxy.control.rolling import plan, validate
from proxy.control.rolling.defaults import apply_pool_defaults, pool_rollout_config
from proxy.control.rolling.model import PoolRollout, RollSpec
from proxy.control.rolling.status import PoolRolloutState
from router import SpecError
from router.build import Problem
from router.preconditions import require_revision

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane

IfMatch = Collection[int] | None


class PoolRolloutCommands:
    """Start, pause, resume and abort a pool's rollout; read one or all.

    Errors: NotFound("pool", name) for an unknown pool, NotFound("rollout", pool) when the pool
    has no rollout; SpecError (problems naming fields such as `batch`, `hook.command`,
    `newBackends`) for a spec that cannot run on the pool; RolloutConflict when the command does
    not fit the phase; PreconditionFailed for a stale If-Match.
    """

    _plane: ControlPlane

    def require_pool(self, name: str) -> None:  # provided by Queries
        raise NotImplementedError

    def pool_rollout_defaults(self, pool: str) -> RollSpec:
        """The spec a start with no options would use: [pools.NAME.rollout] from the
        configuration file over the built-in defaults (in place)."""
        self.require_pool(pool)
        config = pool_rollout_config(self._plane.settings, pool)
        return apply_pool_defaults(RollSpec("in-place"), config)

    async def start_pool_rollout(
        self, pool: str, spec: RollSpec, *, actor: str, if_match: IfMatch = None
    ) -> PoolRolloutState:
        self.require_pool(pool)
        plane = self._plane
        # If-Match first, as for every write: a stale write is refused whatever else is wrong.
        require_revision(if_match, plane.snapshot.revision)
        pool_spec = plane.snapshot.spec.pool(pool)
        assert pool_spec is not None
        validate.check(spec, pool_spec, checked=plane.settings.pool_health(pool).enabled)
        if spec.mode == "in-place" and spec.batch >= len(pool_spec.backends):
            # Every backend drained at once is an outage, the one thing this exists to avoid.
            count = len(pool_spec.backends)
            raise SpecError(
                [
                    Problem(
                        "batch",
                        f"in place, a batch of {spec.batch} would drain all of pool {pool!r}'s "
                        f"{count} backend(s) at once: use a smaller batch, or surge",
                    )
                ]
            )
        existing = plane.pool_rollouts.get(pool)
        if existing is not None and not existing.final:
            raise RolloutConflict(
                pool, f"pool {pool!r} already has a rollout {existing.phase}: abort it first"
            )
        busy = [
            r.route for r in plane.rollouts.values() if not r.final and pool in (r.baseline, r.new)
        ]
        if busy:
            raise RolloutConflict(
                pool, f"pool {pool!r} is in the running rollout of route {busy[0]!r}"
            )
        backends = tuple(backend.name for backend in pool_spec.backends)
        step = plan.start(pool, spec, backends, time.time())
        await plane.rolling.write(step, existing, actor=actor, if_match=if_match)
        return self.pool_rollout(pool)

    async def pause_pool_rollout(
        self, pool: str, *, actor: str, if_match: IfMatch = None
    ) -> PoolRolloutState:
        rollout = self._live_pool(pool, "pause")
        if rollout.phase == "paused":
            require_revision(if_match, self._plane.snapshot.revision)
            return self.pool_rollout(pool)
        step = plan.pause(rollout, time.time(), actor)
        await self._plane.rolling.write(step, rollout, actor=actor, if_match=if_match)
        return self.pool_rollout(pool)

    async def resume_pool_rollout(
        self, pool: str, *, actor: str, if_match: IfMatch = None
    ) -> PoolRolloutState:
        rollout = self._live_pool(pool, "resume")
        if rollout.phase == "progressing":
            require_revision(if_match, self._plane.snapshot.revision)
            return self.pool_rollout(pool)
        step = plan.resume(rollout, time.time(), actor)
        await self._plane.rolling.write(step, rollout, actor=actor, if_match=if_match)
        return self.pool_rollout(pool)

    async def abort_pool_rollout(
        self, pool: str, *, actor: str, if_match: IfMatch = None
    ) -> PoolRolloutState:
        """In place: revert what was replaced (with auto_revert), newest first; surge: every
        old backend back in one write."""
        rollout = self._live_pool(pool, "abort")
        # Paused or not, the revert (or rollback) starts now: the machine's abort leaves the
        # rollout progressing while it reverts.
        step = plan.abort(rollout, time.time(), actor)
        await self._plane.rolling.write(step, rollout, actor=actor, if_match=if_match)
        return self.pool_rollout(pool)

    def pool_rollout(self, pool: str) -> PoolRolloutState:
        plane = self._plane
        rollout = plane.pool_rollouts.get(pool)
        if rollout is None:
            self.require_pool(pool)
            raise NotFound("rollout", pool)
        return plane.rolling.state(rollout)

    def pool_rollouts(self) -> tuple[PoolRolloutState, ...]:
        """Every pool's rollout (running or finished), by pool name."""
        plane = self._plane
        return tuple(
            plane.rolling.state(plane.pool_rollouts[p]) for p in sorted(plane.pool_rollouts)
        )

    def pool_rollout_aborts(self) -> Mapping[tuple[str, str], int]:
        """(pool, cause) -> pool rollouts aborted since the instance started."""
        return dict(self._plane.rolling.aborts)

    def _live_pool(self, pool: str, command: str) -> PoolRollout:
        self.require_pool(pool)
        rollout = self._plane.pool_rollouts.get(pool)
        if rollout is None:
            raise NotFound("rollout", pool)
        if rollout.final:
            raise RolloutConflict(
                pool, f"cannot {command}: the rollout of pool {pool!r} is {rollout.phase}"
            )
        return rollout
