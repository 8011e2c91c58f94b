"""The control service's rollout commands and queries (a part of ControlService).

A person's command is a transition like the controller's own, built by the pure machine and
written through the same write path, under the person's name in the history. A command that
asks for what already is (pausing a paused rollout) changes nothing and makes no revision; one
that does not fit the phase (resuming a finished rollout) is refused with RolloutConflict.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from proxy.control.errors import NotFound, RolloutConflict
from proxy.control.rollout import machine, validate
from proxy.control.rollout.defaults import apply_defaults, route_rollout_config
from proxy.control.rollout.model import Rollout, RolloutSpec
from proxy.control.rollout.status import RolloutState
from router.preconditions import require_revision

if TYPE_CHECKING:
    from proxy.control.plane import ControlPlane

IfMatch = Collection[int] | None


class RolloutCommands:
    """Start, pause, resume, promote and abort a route's rollout; read one or all.

    Errors: NotFound("route", name) for an unknown route, NotFound("rollout", route) when the
    route has no rollout; SpecError (problems naming fields such as `canary`, `steps`,
    `judge.alpha`) for a spec that cannot run on the route; RolloutConflict when the command
    does not fit the phase (start while one is progressing or paused; resume when not paused;
    pause, promote, abort when final); PreconditionFailed for a stale If-Match.
    """

    _plane: ControlPlane

    def require_route(self, name: str) -> None:  # provided by Queries
        raise NotImplementedError

    def rollout_defaults(self, route: str) -> RolloutSpec:
        """The spec a start with no options would use: [routes.NAME.rollout] from the
        configuration file over the built-in defaults; strategy and pool from the route (a
        blue-green route: the colour that is not active; a weighted route with two pools: the
        second)."""
        self.require_route(route)
        spec = self._plane.snapshot.spec.route(route)
        assert spec is not None
        if spec.mode == "blue-green":
            others = [c for c in spec.colours if c != spec.active]
            base = RolloutSpec("blue-green", to=others[0] if len(others) == 1 else None)
        else:
            pools = [name for name, _ in spec.weights]
            base = RolloutSpec("canary", canary=pools[1] if len(pools) == 2 else None)
        return _configured(self._plane, route, base)

    async def start_rollout(
        self, route: str, spec: RolloutSpec, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        self.require_route(route)
        plane = self._plane
        # If-Match first, as for every write: a stale write is refused whatever else is wrong.
        require_revision(if_match, plane.snapshot.revision)
        route_spec = plane.snapshot.spec.route(route)
        assert route_spec is not None
        baseline, new = validate.check(spec, route_spec)
        rolling = [p for p in (baseline, new) if _rolling(plane, p)]
        if rolling:
            raise RolloutConflict(
                route, f"pool {rolling[0]!r} has a pool rollout running: let it end or abort it"
            )
        existing = plane.rollouts.get(route)
        if existing is not None and not existing.final:
            raise RolloutConflict(
                route, f"route {route!r} already has a rollout {existing.phase}: abort it first"
            )
        now = time.time()
        rollout = Rollout(
            route=route,
            spec=spec,
            baseline=baseline,
            new=new,
            phase="progressing",
            reason="",
            step=0,
            started=now,
            step_started=now,
            updated=now,
            revision=0,
        )
        await plane.rollout.write(machine.start(rollout), existing, actor=actor, if_match=if_match)
        plane.rollout.runs.pop(route, None)  # a new rollout's judge starts from nothing
        return self.rollout(route)

    async def pause_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        rollout = self._live(route, "pause")
        if rollout.phase == "paused":
            require_revision(if_match, self._plane.snapshot.revision)
            return self.rollout(route)
        transition = machine.pause(rollout, time.time(), f"by {actor}")
        await self._plane.rollout.write(transition, rollout, actor=actor, if_match=if_match)
        return self.rollout(route)

    async def resume_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        rollout = self._live(route, "resume")
        if rollout.phase == "progressing":
            require_revision(if_match, self._plane.snapshot.revision)
            return self.rollout(route)
        transition = machine.resume(rollout, time.time(), actor)
        await self._plane.rollout.write(transition, rollout, actor=actor, if_match=if_match)
        return self.rollout(route)

    async def promote_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        """Skip the remaining steps: the new version gets everything now."""
        rollout = self._live(route, "promote")
        reason = f"promoted by {actor} at {machine.where(rollout)}"
        transition = machine.promote(rollout, time.time(), reason)
        await self._plane.rollout.write(transition, rollout, actor=actor, if_match=if_match)
        return self.rollout(route)

    async def abort_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        """Everything back to the old version at once; the rollout stays aborted."""
        rollout = self._live(route, "abort")
        transition = machine.abort(rollout, time.time(), "manual", f"by {actor}")
        await self._plane.rollout.write(transition, rollout, actor=actor, if_match=if_match)
        return self.rollout(route)

    def rollout(self, route: str) -> RolloutState:
        self.require_route(route)
        plane = self._plane
        rollout = plane.rollouts.get(route)
        if rollout is None:
            raise NotFound("rollout", route)
        evidence, verdict = plane.rollout.evidence(route)
        spec = plane.snapshot.spec.route(route)
        weights = spec.weights if spec is not None and spec.mode == "weighted" else ()
        active = spec.active if spec is not None and spec.mode == "blue-green" else None
        return RolloutState(plane.snapshot.revision, rollout, evidence, verdict, weights, active)

    def rollouts(self) -> tuple[RolloutState, ...]:
        """Every route's rollout (running or finished), by route name."""
        plane = self._plane
        return tuple(
            self.rollout(route)
            for route in sorted(plane.rollouts)
            if plane.snapshot.spec.route(route) is not None
        )

    def rollout_aborts(self) -> Mapping[tuple[str, str], int]:
        """(route, cause) -> rollouts aborted since the instance started."""
        return dict(self._plane.rollout.aborts)

    def _live(self, route: str, command: str) -> Rollout:
        self.require_route(route)
        rollout = self._plane.rollouts.get(route)
        if rollout is None:
            raise NotFound("rollout", route)
        if rollout.final:
            raise RolloutConflict(
                route, f"cannot {command}: the rollout of route {route!r} is {rollout.phase}"
            )
        return rollout


def _rolling(plane: ControlPlane, pool: str) -> bool:
    rollout = plane.pool_rollouts.get(pool)
    return rollout is not None and not rollout.final


def _configured(plane: ControlPlane, route: str, base: RolloutSpec) -> RolloutSpec:
    """[routes.NAME.rollout] over `base`: the settings are those of the last (re)load."""
    return apply_defaults(base, route_rollout_config(plane.settings, route))
