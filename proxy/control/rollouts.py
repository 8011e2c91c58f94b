"""The control service's rollout commands and queries (a part of ControlService).

(Interface fixed by the lead; implementation in progress.)
"""

from __future__ import annotations

from collections.abc import Collection

from proxy.control.rollout.model import RolloutSpec
from proxy.control.rollout.status import RolloutState

IfMatch = Collection[int] | None


class RolloutCommands:
    """Start, pause, resume, promote and abort a route's rollout; read one or all.

    Errors: NotFound("route", name) for an unknown route, NotFound("rollout", route) when the
    route has no rollout; SpecError (problems naming fields such as `canary`, `steps`,
    `judge.alpha`) for a spec that cannot run on the route; RolloutConflict when the command
    does not fit the phase (start while one is progressing or paused; resume when not paused;
    pause, promote, abort when final); PreconditionFailed for a stale If-Match.
    """

    def rollout_defaults(self, route: str) -> RolloutSpec:
        """The spec a start with no options would use: [routes.NAME.rollout] from the
        configuration file over the built-in defaults; strategy and pool from the route (a
        blue-green route: the colour that is not active; a weighted route with two pools: the
        second)."""
        raise NotImplementedError

    async def start_rollout(
        self, route: str, spec: RolloutSpec, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        raise NotImplementedError

    async def pause_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        raise NotImplementedError

    async def resume_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        raise NotImplementedError

    async def promote_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        """Skip the remaining steps: the new version gets everything now."""
        raise NotImplementedError

    async def abort_rollout(
        self, route: str, *, actor: str, if_match: IfMatch = None
    ) -> RolloutState:
        """Everything back to the old version at once; the rollout stays aborted."""
        raise NotImplementedError

    def rollout(self, route: str) -> RolloutState:
        raise NotImplementedError

    def rollouts(self) -> tuple[RolloutState, ...]:
        """Every route's rollout (running or finished), by route name."""
        raise NotImplementedError
