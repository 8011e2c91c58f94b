"""The write path's values: what a step proposes (`Next`), and what the plane's listeners hear.

Pure: no I/O. The plane (proxy.control.plane) applies a `Step` under its lock; a reload's step
is built here too (`reload_step`), from the configuration file read beforehand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.config import ConfigError, Settings
from proxy.control.rolling.model import PoolRollout
from proxy.control.rollout.model import Rollout
from router import Snapshot, Spec, SpecError, build_snapshot, carry_runtime

log = logging.getLogger("turnout.control")

RESTART_ONLY = ("listen", "process", "admin", "state")
"""Sections a reload cannot change in a running instance (they need a restart)."""


@dataclass(frozen=True, slots=True)
class Next:
    """What a step of the write path proposes: the next snapshot, and for a reload the settings
    and the configuration file's spec it read (None: unchanged)."""

    snapshot: Snapshot
    settings: Settings | None = None
    file_spec: Spec | None = None
    rollouts: Mapping[str, Rollout] | None = None
    """Every route's rollout after the step (None: unchanged)."""
    pool_rollouts: Mapping[str, PoolRollout] | None = None
    """Every pool's rollout after the step (None: unchanged)."""
    record: tuple[dict[str, Any], dict[str, Any]] | None = None
    """The history's before/after, when the step knows it better than a spec diff."""


Step = Callable[[Snapshot], Next]

Listener = Callable[[str, str, Spec, Spec, int], None]
"""Told of every change made: (actor, action, spec before, spec after, revision)."""


def same_state(new: Snapshot, old: Snapshot) -> bool:
    """Whether `new` routes exactly as `old` does (revisions aside): by value, not identity."""
    return (
        new.spec == old.spec
        and dict(new.health) == dict(old.health)
        and dict(new.readmitted) == dict(old.readmitted)
    )


def reload_step(
    config_path: Path,
    running_settings: Callable[[], Settings],
    known_file_spec: Callable[[], Spec],
    settings: Settings,
    file_snapshot: Snapshot,
) -> Step:
    """The step of a reload: the file's `settings` and spec (read beforehand) combined with the
    runtime state (`router.carry_runtime`). The running settings and the file's spec as last
    loaded are read when the step runs (under the plane's lock), not when it is made."""

    def step(current: Snapshot) -> Next:
        running = running_settings()
        ignored = [s for s in RESTART_ONLY if getattr(settings, s) != getattr(running, s)]
        kept = settings
        if ignored:
            log.warning(
                "reload: changes to [%s] take effect only after a restart", ", ".join(ignored)
            )
            kept = settings.model_copy(
                update={section: getattr(running, section) for section in ignored}
            )
        spec = carry_runtime(known_file_spec(), file_snapshot.spec, current.spec)
        if spec == current.spec and kept == running:
            return Next(current, None, file_snapshot.spec)
        try:
            snapshot = build_snapshot(spec, {}, revision=current.revision + 1)
        except SpecError as error:
            raise ConfigError(config_path, [str(p) for p in error.problems]) from error
        return Next(snapshot, kept, file_snapshot.spec)

    return step
