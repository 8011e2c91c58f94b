"""What the control service refuses, as exceptions of its own vocabulary. Each leaves every
state as it was. The rules' own exceptions come from router/ (pure) and are re-exported here so
that a caller catches everything the service raises from one place."""

from __future__ import annotations

from pathlib import Path

from router import SpecError
from router.guards import BackendInService, NoEligibleBackend
from router.preconditions import PreconditionFailed

__all__ = [
    "BackendInService",
    "FleetLagging",
    "InvalidConfig",
    "NoEligibleBackend",
    "NotFound",
    "PreconditionFailed",
    "RevisionUnavailable",
    "RolloutConflict",
    "SpecError",
    "StateUnavailable",
]


class NotFound(Exception):
    """No route, pool or backend of that name (a backend is named `pool/backend`)."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"no {kind} named {name!r}")
        self.kind = kind
        self.name = name


class RevisionUnavailable(Exception):
    """Undo: the history does not say what the route was at that revision."""

    def __init__(self, route: str, revision: int) -> None:
        super().__init__(
            f"route {route!r} at revision {revision} is not in the history "
            "(too old, in the future, or the route did not exist)"
        )
        self.route = route
        self.revision = revision


class InvalidConfig(Exception):
    """Reload: the configuration file is invalid; the running state is kept."""

    def __init__(self, path: Path, problems: tuple[str, ...]) -> None:
        super().__init__(f"{path}: {len(problems)} problem(s)")
        self.path = path
        self.problems = problems


class RolloutConflict(Exception):
    """A rollout command that does not fit the rollout's phase: starting one while another
    runs on the route, resuming one that is not paused, anything but reading a finished one."""

    def __init__(self, route: str, detail: str) -> None:
        super().__init__(detail)
        self.route = route
        self.detail = detail


class StateUnavailable(Exception):
    """Fleet mode: etcd, where the state lives, cannot be reached; nothing was changed (every
    instance keeps routing by its last state)."""


class FleetLagging(Exception):
    """Fleet mode: the write is committed (and live on this instance), but these instances had
    not applied it within the deadline."""

    def __init__(self, revision: int, instances: tuple[str, ...], wait: float) -> None:
        names = ", ".join(instances) or "(unknown: etcd did not answer)"
        super().__init__(
            f"revision {revision} is committed and applied here, but not by {names} "
            f"within {wait:g} s"
        )
        self.revision = revision
        self.instances = instances
        self.wait = wait
