"""Where the fleet's shared state lives in etcd, and how it is written there (pure: no I/O).

Theory of operation. Under one prefix P (e.g. "/turnout/prod/") the fleet keeps:

- `P/state`: ONE key holding the shared routing state, `{"format": 1, "revision": N,
  "fileSpec": ..., "spec": ..., "rollouts": [...], "poolRollouts": [...]}`: the fields of
  proxy.state.SavedState minus `history`. One key, so a write is one compare on one
  mod_revision and a reader never sees half of a change.
- `P/history/{revision:012d}`: one Change per key, written in the same txn as the state.
  Zero-padded so that etcd's byte order of keys is the revisions' order.
- `P/members/{instance}`, `P/leader/rollouts`, `P/counts/{instance}`: per-instance keys under
  the instance's lease (written elsewhere; named here so every key's name has one home).

`revision` is turnout's revision (+1 per write), the fleet's revision everywhere; etcd's own
mod_revision only orders and guards writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from proxy.control.rolling.model import PoolRollout
from proxy.control.rollout.model import Rollout
from proxy.state import Change
from router import Spec

FORMAT: Final = 1


@dataclass(frozen=True, slots=True)
class SharedState:
    """What every instance of the fleet routes by (health stays per instance)."""

    revision: int
    file_spec: Spec
    spec: Spec
    rollouts: tuple[Rollout, ...] = ()
    pool_rollouts: tuple[PoolRollout, ...] = ()


class BadDocument(ValueError):
    """A value in etcd that is not what the layout says it is; the message names what is wrong."""


# Python 3.11: pydantic needs typing_extensions' TypedDict to read field types.
class _Document(TypedDict):
    format: Literal[1]
    revision: int
    fileSpec: Spec
    spec: Spec
    rollouts: tuple[Rollout, ...]
    poolRollouts: tuple[PoolRollout, ...]


_DOCUMENT = TypeAdapter(_Document)
_CHANGE = TypeAdapter(Change)


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names under one prefix (given with or without its trailing slash)."""

    prefix: str

    def __post_init__(self) -> None:
        if not self.prefix.endswith("/"):
            object.__setattr__(self, "prefix", self.prefix + "/")

    @property
    def state(self) -> str:
        return self.prefix + "state"

    @property
    def history(self) -> str:
        """The prefix of every history entry."""
        return self.prefix + "history/"

    def history_entry(self, revision: int) -> str:
        return f"{self.history}{revision:012d}"

    @property
    def members(self) -> str:
        return self.prefix + "members/"

    def member(self, instance: str) -> str:
        return self.members + instance

    @property
    def leader(self) -> str:
        return self.prefix + "leader/rollouts"

    @property
    def counts(self) -> str:
        return self.prefix + "counts/"

    def count(self, instance: str) -> str:
        return self.counts + instance


def history_revision(key: str, keys: Keys) -> int:
    """The revision a history entry's key names; BadDocument for any other key."""
    tail = key.removeprefix(keys.history)
    if tail == key or not tail.isdigit():
        raise BadDocument(f"{key!r} is not a history entry under {keys.history!r}")
    return int(tail)


def encode(state: SharedState) -> bytes:
    document: _Document = {
        "format": FORMAT,
        "revision": state.revision,
        "fileSpec": state.file_spec,
        "spec": state.spec,
        "rollouts": state.rollouts,
        "poolRollouts": state.pool_rollouts,
    }
    return _DOCUMENT.dump_json(document)


def decode(raw: bytes) -> SharedState:
    """The state in a `P/state` value; BadDocument naming the first fields that are wrong."""
    try:
        document = _DOCUMENT.validate_json(raw)
    except ValidationError as error:
        raise BadDocument(
            f"not a turnout shared state of format {FORMAT}: {_reasons(error)}"
        ) from error
    return SharedState(
        document["revision"],
        document["fileSpec"],
        document["spec"],
        document["rollouts"],
        document["poolRollouts"],
    )


def encode_change(change: Change) -> bytes:
    return _CHANGE.dump_json(change)


def decode_change(raw: bytes) -> Change:
    try:
        return _CHANGE.validate_json(raw)
    except ValidationError as error:
        raise BadDocument(f"not a turnout history entry: {_reasons(error)}") from error


def _reasons(error: ValidationError, most: int = 3) -> str:
    found = error.errors(include_url=False)
    reasons = [
        f"{'.'.join(str(part) for part in item['loc']) or 'document'}: {item['msg']}"
        for item in found[:most]
    ]
    more = f" (and {len(found) - most} more)" if len(found) > most else ""
    return "; ".join(reasons) + more
