"""Follow the fleet's shared state: every new state, in order, applied once.

Theory of operation. The watcher watches `P/state` from an etcd revision and hands each new
state to `apply`, one at a time, awaiting it before the next (apply is where the control plane
swaps its snapshot and saves its last-known-good copy). Two revisions are tracked:

- `next_revision`: the etcd revision the watch resumes from: the last event's mod_revision + 1
  once `apply` returned. A failing `apply` does not advance it: the same state is tried again
  after a backoff, never skipped.
- `applied_revision`: turnout's revision of the last applied state. A state not newer than it is
  ignored (never going back), so a state seen twice (a watch resumed, a snapshot read after a
  compaction) is applied once.

When the resume revision was compacted (apisix #13067: events lost after compaction) the
watcher reads `P/state` once at one revision (`get_prefix`: a consistent snapshot), applies it
if newer, and resumes from that snapshot's revision + 1: nothing between the state's write and
the snapshot touched `P/state`, and watching from the snapshot cannot hit the same compaction
again. When etcd cannot be reached it waits (0.1 s, doubling to 2 s, reset by any progress) and
resumes from `next_revision`; a restarted etcd keeps its revisions, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from proxy.fleet.etcd import Compacted, EtcdClient, EtcdError
from proxy.fleet.layout import BadDocument, Keys, SharedState, decode

log = logging.getLogger("turnout.fleet.watcher")

FIRST_BACKOFF = 0.1
LAST_BACKOFF = 2.0

Apply = Callable[[SharedState, int], Awaitable[None]]
"""Called with a new state and its etcd mod_revision; returns once the state is live."""


class StateWatcher:
    """Applies every new shared state under `prefix`, watching from etcd revision
    `start_revision` (the mod_revision of the state the instance applied + 1; 1 for none).
    `applied_revision`: turnout's revision of that state (0 for none)."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        apply: Apply,
        start_revision: int,
        *,
        applied_revision: int = 0,
    ) -> None:
        self._client = client
        self._keys = Keys(prefix)
        self._apply = apply
        self.next_revision = max(start_revision, 1)
        self.applied_revision = applied_revision
        self._backoff = FIRST_BACKOFF
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fleet-state-watcher")

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except Compacted as compacted:
                log.warning(
                    "revision %d of %s was compacted (oldest kept: %s); reading a snapshot",
                    self.next_revision,
                    self._keys.state,
                    compacted.compact_revision,
                )
                try:
                    await self._catch_up()
                    continue
                except EtcdError as error:
                    log.warning("cannot read %s: %s", self._keys.state, error)
            except EtcdError as error:  # EtcdUnavailable, or a watch etcd canceled
                log.warning(
                    "watch of %s from %d ended: %s", self._keys.state, self.next_revision, error
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # apply failed: the same state is tried again after the backoff.
                log.exception("could not apply the fleet's state at %d", self.next_revision)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, LAST_BACKOFF)

    async def _follow(self) -> None:
        # aclosing: a failing apply or stop() ends the watch's HTTP stream now, not at GC.
        watch = self._client.watch(self._keys.state, self.next_revision)
        async with contextlib.aclosing(watch) as batches:
            async for batch in batches:
                self._backoff = FIRST_BACKOFF
                for event in batch:
                    # The watch covers keys starting with P/state; only P/state is the state.
                    if event.key == self._keys.state and event.kind == "put":
                        await self._offer(event.value, event.mod_revision)
                    self.next_revision = event.mod_revision + 1

    async def _catch_up(self) -> None:
        items, revision = await self._client.get_prefix(self._keys.state)
        for item in items:
            if item.key == self._keys.state:
                await self._offer(item.value, item.mod_revision)
        self.next_revision = revision + 1
        self._backoff = FIRST_BACKOFF

    async def _offer(self, raw: bytes, mod_revision: int) -> None:
        try:
            state = decode(raw)
        except BadDocument as error:
            # Retrying would read the same bytes forever; the next good write is applied.
            log.error("ignoring %s at etcd revision %d: %s", self._keys.state, mod_revision, error)
            return
        if state.revision <= self.applied_revision:
            return
        await self._apply(state, mod_revision)
        self.applied_revision = state.revision
