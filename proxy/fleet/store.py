"""The fleet's shared state in etcd, and this instance's last-known-good copy of it on disk.

Theory of operation. `FleetStore` reads and writes the keys of `layout` under one prefix:

- `load()` reads `P/state` (one key: one consistent read) with its mod_revision, which the next
  write must name.
- `commit()` is ONE txn: compare `P/state`'s mod_revision with the one the writer read (0: it
  must not exist yet), put the state, put its history entry, and delete the entry that falls
  out of the newest `history_limit`. Of two writers that read the same mod_revision exactly one
  wins; the loser's txn writes nothing and it gets None (If-Match and "no lost update" across
  the fleet). A txn is never retried here: the caller re-reads and decides.
- `history()` reads the entries (keys sort as revisions: newest last).

`LastKnownGood` keeps the latest state this instance applied, written atomically (temp file,
fsync, rename, directory fsync), so an instance restarted while etcd is down serves what the
fleet last agreed on (apisix #3902: a restart without etcd lost everything).
"""

from __future__ import annotations

import logging
from pathlib import Path

import orjson

from proxy.fleet.etcd import Delete, EtcdClient, Put, Unchanged
from proxy.fleet.layout import (
    BadDocument,
    Keys,
    SharedState,
    decode,
    decode_change,
    encode,
    encode_change,
)
from proxy.state import HISTORY_LIMIT, Change, write_atomically

log = logging.getLogger("turnout.fleet")


class FleetStore:
    """The shared state under `prefix` in etcd. Raises etcd.EtcdUnavailable when etcd cannot
    answer and layout.BadDocument when a stored value is not what the layout says."""

    def __init__(
        self, client: EtcdClient, prefix: str, *, history_limit: int = HISTORY_LIMIT
    ) -> None:
        if history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        self.keys = Keys(prefix)
        self._client = client
        self._history_limit = history_limit

    async def load(self) -> tuple[SharedState, int] | None:
        """The shared state and `P/state`'s mod_revision; None when the fleet has none yet."""
        found = await self._client.get(self.keys.state)
        if found is None:
            return None
        raw, mod_revision = found
        return decode(raw), mod_revision

    async def commit(
        self, expected_mod_revision: int, state: SharedState, change: Change
    ) -> int | None:
        """Write `state` and its history entry if `P/state` is still at `expected_mod_revision`
        (0: it must not exist); the new mod_revision, or None when another writer won."""
        if change.revision != state.revision:
            raise ValueError(
                f"the change's revision {change.revision} is not the state's {state.revision}"
            )
        ops: list[Put | Delete] = [
            Put(self.keys.state, encode(state)),
            Put(self.keys.history_entry(change.revision), encode_change(change)),
        ]
        # Revisions go up by one per write, so one delete keeps the window at the limit.
        dropped = change.revision - self._history_limit
        if dropped > 0:
            ops.append(Delete(self.keys.history_entry(dropped)))
        applied, revision = await self._client.txn(
            [Unchanged(self.keys.state, expected_mod_revision)], ops
        )
        return revision if applied else None

    async def history(self, limit: int = HISTORY_LIMIT) -> list[Change]:
        """The newest `limit` history entries, oldest first (newest last)."""
        items, _ = await self._client.get_prefix(self.keys.history)
        return [decode_change(item.value) for item in items[-limit:]] if limit > 0 else []


class UnreadableCopy(Exception):
    """The last-known-good file exists and cannot be read; the message says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"last-known-good copy {path} is unreadable: {reason}")
        self.path = path
        self.reason = reason


class LastKnownGood:
    """The latest shared state this instance applied under `prefix`, and its etcd
    mod_revision, on disk. A copy of another prefix's state is not this fleet's: ignored."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix

    def save(self, state: SharedState, mod_revision: int) -> None:
        # The state's own document, byte for byte as in etcd, inside a small envelope.
        payload = b'{"prefix":%s,"modRevision":%d,"state":%s}' % (
            orjson.dumps(self.prefix),
            mod_revision,
            encode(state),
        )
        write_atomically(self.path, payload)

    def load(self) -> tuple[SharedState, int] | None:
        """The saved state and mod_revision; None when there is no copy (or it is another
        prefix's); UnreadableCopy when there is one that cannot be read (left in place for the
        operator to look at)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UnreadableCopy(self.path, str(error)) from error
        try:
            document = orjson.loads(raw)
            if not isinstance(document, dict) or not isinstance(document.get("modRevision"), int):
                raise BadDocument("no integer modRevision")
            state = decode(orjson.dumps(document.get("state")))
        except (orjson.JSONDecodeError, BadDocument) as error:
            raise UnreadableCopy(self.path, str(error)) from error
        if document.get("prefix", self.prefix) != self.prefix:
            log.warning(
                "last-known-good copy %s is of prefix %r, not %r: not using it",
                self.path,
                document.get("prefix"),
                self.prefix,
            )
            return None
        return state, document["modRevision"]
