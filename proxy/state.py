"""Runtime state that outlives the process: the routing spec, its revision, the history and the
rollouts.

Theory of operation. After every change the control plane saves one JSON document: the spec it
routes by, the revision, the spec the configuration file declared when it was loaded (so the
next start can tell what the file changed since), and the history of changes. It is written
atomically: to a temporary file in the same directory, fsync'd, renamed over the old one, and the
directory fsync'd, so a crash leaves either the old document or the new one, never half of each.

At start the saved state and the configuration file are combined by `router.carry_runtime`:
runtime state wins for every route and pool whose definition in the file did not change.

A state file that cannot be read is never overwritten: it is renamed aside
(`<name>.corrupt-<time>`), reported in the log and in the history, and turnout starts from the
configuration file alone.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from proxy.control.rolling.model import PoolRollout
from proxy.control.rollout.model import Rollout
from router import Spec

log = logging.getLogger("turnout.state")

FORMAT = 1
HISTORY_LIMIT = 1000
"""History entries kept (and saved); older ones are dropped, and undo cannot reach them."""


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the history: who changed what, when, from what to what."""

    revision: int
    time: float
    """Seconds since the epoch."""
    actor: str
    """The token's name, `local` (loopback, no tokens), `config-file`, `health-checker`."""
    action: str
    target: str
    """`route/web`, `pool/stable/backend/s1`, `config`."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SavedState:
    revision: int
    file_spec: Spec
    """The configuration file's spec as last loaded: what the next start compares against."""
    spec: Spec
    history: tuple[Change, ...]
    rollouts: tuple[Rollout, ...] = ()
    """Every route's rollout, running or finished (a file from before rollouts has none)."""
    pool_rollouts: tuple[PoolRollout, ...] = ()
    """Every pool's rollout, running or finished."""


_SAVED = TypeAdapter(SavedState)


class CorruptState(Exception):
    def __init__(self, path: Path, aside: Path, reason: str) -> None:
        super().__init__(f"state file {path} is unreadable ({reason}); kept aside as {aside}")
        self.path = path
        self.aside = aside
        self.reason = reason


class StateFile:
    """Where the runtime state lives; None path: persistence is off."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> SavedState | None:
        """The saved state, None when there is none; CorruptState (after moving the file
        aside) when it cannot be read."""
        if self.path is None or not self.path.exists():
            return None
        try:
            data = orjson.loads(self.path.read_bytes())
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a turnout state file of format {FORMAT}")
            return _SAVED.validate_python(data["state"])
        except (OSError, ValueError, ValidationError, KeyError) as error:
            # Nanoseconds: two corrupt starts in one second must not overwrite the first copy.
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.time_ns()}")
            self.path.rename(aside)
            reason = str(error).splitlines()[0]
            raise CorruptState(self.path, aside, reason) from error

    def save(self, state: SavedState) -> None:
        if self.path is None:
            return
        document = {"format": FORMAT, "state": _SAVED.dump_python(state, mode="json")}
        write_atomically(self.path, orjson.dumps(document, option=orjson.OPT_INDENT_2))


def write_atomically(path: Path, payload: bytes) -> None:
    """Replace `path` by `payload` so that a crash leaves the old content or the new, never
    half of each: a temporary file in the same directory, fsync'd, renamed over the old one,
    and the directory fsync'd."""
    directory = path.parent
    temporary = directory / f".{path.name}.{os.getpid()}.tmp"
    with temporary.open("wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    # The rename is durable only once the directory entry is.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def default_state_path(config_path: Path) -> Path:
    """Next to the configuration file: `turnout.toml` -> `turnout.state.json`."""
    return config_path.with_name(config_path.stem + ".state.json")
